-- Online moves of an organization between shards (docs/decisions/0021-tenant-shards.md, `liftoff
-- shard move`): copy, catch up from the changes captured on the source, a short write fence,
-- switch the directory, verify, delete from the source.

-- Control plane. While a move's fence holds, the org's writes wait in every process (the routing
-- reads this before it sends a write to the org's shard); the fence lifts by itself at this time,
-- so a mover that dies in it cannot stop the org's writes for longer.
ALTER TABLE orgs ADD COLUMN fenced_until timestamptz;

-- Control plane: the moves begun and not finished, one per org; what `liftoff shard move` resumes.
CREATE TABLE shard_moves (
  org_id     uuid PRIMARY KEY,
  source     text NOT NULL,
  target     text NOT NULL,
  phase      text NOT NULL CHECK (phase IN ('copying', 'copied', 'switched')),
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Tenant plane: the orgs being moved. On the source, `capturing`: every change of the org's rows
-- is recorded in shard_move_changes; `fenced`: changes are refused until fenced_until (a straggler
-- that routed before the fence gets a retryable error instead of a lost write); `moved`: the org
-- lives elsewhere now, every change is refused. On the target, `arriving`: until the switch, only
-- the mover changes the org's rows there; another session's change of one (a sweep's expiry, a
-- worker's claim) is skipped, as if the row did not match. The mover's own session
-- (liftoff.mover = on) is never refused.
CREATE TABLE shard_move_marks (
  org_id       uuid PRIMARY KEY,
  phase        text NOT NULL CHECK (phase IN ('capturing', 'fenced', 'moved', 'arriving')),
  fenced_until timestamptz
);

-- Tenant plane, on the source shard: the keys of the rows a moving org changed since the capture
-- began; the mover applies each to the target and deletes it.
CREATE TABLE shard_move_changes (
  seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id     uuid NOT NULL,
  table_name text NOT NULL,
  key        jsonb NOT NULL
);
CREATE INDEX shard_move_changes_org_idx ON shard_move_changes (org_id, seq);

-- The guard of every table that holds an org's rows. TG_ARGV: the table's key columns. For an org
-- without a mark (every org but a moving one) it costs one lookup in a table of a few rows.
CREATE FUNCTION liftoff_move_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  org uuid;
  mark_phase text;
  mark_until timestamptz;
  column_name text;
  new_row jsonb;
  old_row jsonb;
  new_key jsonb := '{}';
  old_key jsonb := '{}';
BEGIN
  IF TG_OP = 'DELETE' THEN org := OLD.org_id; ELSE org := NEW.org_id; END IF;
  SELECT m.phase, m.fenced_until INTO mark_phase, mark_until FROM shard_move_marks m WHERE m.org_id = org;
  IF NOT FOUND OR current_setting('liftoff.mover', true) = 'on' THEN
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
  END IF;
  IF mark_phase = 'arriving' THEN
    RETURN NULL;
  END IF;
  IF mark_phase = 'moved' OR (mark_phase = 'fenced' AND mark_until > clock_timestamp()) THEN
    RAISE EXCEPTION 'organization % is moving to another shard', org
      USING ERRCODE = 'LO001', HINT = 'retry: the organization is served by its new shard shortly';
  END IF;
  IF TG_NARGS = 0 THEN  -- a table the mover copies inside its fence: nothing to record
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
  END IF;
  IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
  IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
  FOREACH column_name IN ARRAY TG_ARGV LOOP
    IF TG_OP <> 'DELETE' THEN new_key := new_key || jsonb_build_object(column_name, new_row -> column_name); END IF;
    IF TG_OP <> 'INSERT' THEN old_key := old_key || jsonb_build_object(column_name, old_row -> column_name); END IF;
  END LOOP;
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO shard_move_changes (org_id, table_name, key) VALUES (org, TG_TABLE_NAME, new_key);
  END IF;
  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND old_key <> new_key) THEN
    INSERT INTO shard_move_changes (org_id, table_name, key) VALUES (org, TG_TABLE_NAME, old_key);
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER collections_move_guard BEFORE INSERT OR UPDATE OR DELETE ON collections
  FOR EACH ROW EXECUTE FUNCTION liftoff_move_guard('id');
CREATE TRIGGER records_move_guard BEFORE INSERT OR UPDATE OR DELETE ON records
  FOR EACH ROW EXECUTE FUNCTION liftoff_move_guard('collection_id', 'id');
CREATE TRIGGER idempotency_keys_move_guard BEFORE INSERT OR UPDATE OR DELETE ON idempotency_keys
  FOR EACH ROW EXECUTE FUNCTION liftoff_move_guard('org_id', 'key');
CREATE TRIGGER audit_chains_move_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_chains
  FOR EACH ROW EXECUTE FUNCTION liftoff_move_guard('org_id');
CREATE TRIGGER audit_events_move_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION liftoff_move_guard('org_id', 'seq');
-- Pending events have no key: the mover copies them inside its fence, so their guard only refuses.
CREATE TRIGGER audit_pending_move_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_pending
  FOR EACH ROW EXECUTE FUNCTION liftoff_move_guard();
CREATE TRIGGER jobs_move_guard BEFORE INSERT OR UPDATE OR DELETE ON jobs
  FOR EACH ROW EXECUTE FUNCTION liftoff_move_guard('id');
CREATE TRIGGER job_unique_keys_move_guard BEFORE INSERT OR UPDATE OR DELETE ON job_unique_keys
  FOR EACH ROW EXECUTE FUNCTION liftoff_move_guard('org_id', 'key');
CREATE TRIGGER usage_hourly_move_guard BEFORE INSERT OR UPDATE OR DELETE ON usage_hourly
  FOR EACH ROW EXECUTE FUNCTION liftoff_move_guard('org_id', 'hour');
CREATE TRIGGER webhook_endpoints_move_guard BEFORE INSERT OR UPDATE OR DELETE ON webhook_endpoints
  FOR EACH ROW EXECUTE FUNCTION liftoff_move_guard('id');
CREATE TRIGGER webhook_deliveries_move_guard BEFORE INSERT OR UPDATE OR DELETE ON webhook_deliveries
  FOR EACH ROW EXECUTE FUNCTION liftoff_move_guard('id');
