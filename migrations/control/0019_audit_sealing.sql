-- The audit chain leaves the write path (docs/decisions/0020-audit-sealing.md). Tenant plane.
--
-- A mutation's transaction inserts its event into audit_pending: unnumbered and unchained, so one
-- organization's writers share no row and commit in parallel. The sealer (audit_seal below, run by
-- every server process, woken by its own writes and on an interval) moves each org's pending
-- events into audit_events in batches: numbered after the org's head and hash-linked in the order
-- of pending_id, in the transaction that deletes them here and advances the head. audit_events
-- therefore holds only sealed events, and an org's committed events are its sealed ones plus its
-- pending ones.
--
-- Why pending_id orders commits: it is taken from the identity sequence when the event is inserted,
-- the last statement of its transaction. A transaction that depends on another (it waited for a
-- record's row lock the other held, or read what the other wrote) inserts its event after the other
-- committed, so it takes a larger pending_id; and a sealer that can see it can see the other. So
-- any two events of one record are sealed in the order their transactions committed. The sequence
-- must keep CACHE 1: values cached by a session would not follow time.
CREATE TABLE audit_pending (
  pending_id  bigint GENERATED ALWAYS AS IDENTITY,
  org_id      uuid NOT NULL,
  id          uuid NOT NULL,
  occurred_at timestamptz NOT NULL,
  actor_type  text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system')),
  actor_id    uuid,
  action      text NOT NULL,
  target_type text NOT NULL,
  target_id   text NOT NULL,
  before      json,
  after       json,
  ip          text NOT NULL,
  user_agent  text NOT NULL,
  request_id  text NOT NULL
) WITH (
  -- A queue: rows live for milliseconds. Vacuum after a fixed amount of churn, unthrottled.
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 5000,
  autovacuum_vacuum_insert_scale_factor = 0,
  autovacuum_vacuum_insert_threshold = 5000,
  autovacuum_analyze_scale_factor = 0,
  autovacuum_analyze_threshold = 5000,
  autovacuum_vacuum_cost_delay = 0
);
CREATE INDEX audit_pending_org_idx ON audit_pending (org_id, pending_id);

-- The canonical text of an event, which its hash covers: a JSON array of every column but the
-- hashes, in a fixed order (strings escaped, so no field can bleed into the next), times as integer
-- microseconds. Sealing and verifying both use it. It is the expression the server used to append
-- with before this migration, so chains written then verify unchanged.
CREATE FUNCTION audit_canonical(org_id uuid, seq bigint, id uuid, occurred_at timestamptz,
                                actor_type text, actor_id uuid, action text, target_type text,
                                target_id text, before json, after json, ip text,
                                user_agent text, request_id text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT json_build_array(org_id::text, seq, id::text,
                          (extract(epoch FROM occurred_at) * 1000000)::bigint, actor_type,
                          actor_id::text, action, target_type, target_id, before::text,
                          after::text, ip, user_agent, request_id)::text
$$;

-- Seals up to max_per_org pending events of each org it takes, oldest pending_id first, and
-- returns each org's new head. orgs NULL: every org with pending events whose head no other sealer
-- holds (SKIP LOCKED, the background sealers); otherwise those orgs, waiting for their heads (a
-- barrier: everything committed before the call is sealed when it returns, up to max_per_org).
-- An org with nothing pending is not locked: a barrier over a sealed chain writes nothing.
-- SECURITY DEFINER: the server's role cannot insert into audit_events or delete from
-- audit_pending itself, only move events from one to the other through this function.
CREATE FUNCTION audit_seal(orgs uuid[], max_per_org integer)
RETURNS TABLE (org_id uuid, last_seq bigint, sealed integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  chain audit_chains;
BEGIN
  IF orgs IS NULL THEN
    FOR chain IN
      SELECT * FROM audit_chains c
      WHERE c.org_id IN (SELECT DISTINCT p.org_id FROM audit_pending p)
      ORDER BY c.org_id FOR UPDATE SKIP LOCKED
    LOOP
      RETURN QUERY SELECT * FROM audit_seal_chain(chain, max_per_org);
    END LOOP;
  ELSE
    FOR chain IN
      SELECT * FROM audit_chains c
      WHERE c.org_id = ANY (orgs)
        AND EXISTS (SELECT 1 FROM audit_pending p WHERE p.org_id = c.org_id)
      ORDER BY c.org_id FOR UPDATE
    LOOP
      RETURN QUERY SELECT * FROM audit_seal_chain(chain, max_per_org);
    END LOOP;
  END IF;
END
$$;

-- One org's part of audit_seal, its head row locked by the caller.
CREATE FUNCTION audit_seal_chain(chain audit_chains, max_per_org integer)
RETURNS TABLE (org_id uuid, last_seq bigint, sealed integer)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  e audit_pending;
  seq bigint := chain.last_seq;
  hash bytea := chain.last_hash;
  prev bytea := chain.last_prev;
  moved bigint[] := '{}';
BEGIN
  FOR e IN
    SELECT * FROM audit_pending p WHERE p.org_id = chain.org_id
    ORDER BY p.pending_id LIMIT max_per_org
  LOOP
    seq := seq + 1;
    prev := hash;
    hash := sha256(prev || convert_to(audit_canonical(
        e.org_id, seq, e.id, e.occurred_at, e.actor_type, e.actor_id, e.action, e.target_type,
        e.target_id, e.before, e.after, e.ip, e.user_agent, e.request_id), 'UTF8'));
    INSERT INTO audit_events (org_id, seq, id, occurred_at, actor_type, actor_id, action,
                              target_type, target_id, before, after, ip, user_agent, request_id,
                              prev_hash, hash)
    VALUES (e.org_id, seq, e.id, e.occurred_at, e.actor_type, e.actor_id, e.action,
            e.target_type, e.target_id, e.before, e.after, e.ip, e.user_agent, e.request_id,
            prev, hash);
    moved := moved || e.pending_id;
  END LOOP;
  IF cardinality(moved) = 0 THEN
    RETURN;
  END IF;
  -- Exactly the rows sealed: one with a smaller pending_id that committed after the read above
  -- waits for the next round.
  DELETE FROM audit_pending p WHERE p.org_id = chain.org_id AND p.pending_id = ANY (moved);
  UPDATE audit_chains c SET last_seq = seq, last_prev = prev, last_hash = hash
  WHERE c.org_id = chain.org_id;
  RETURN QUERY SELECT chain.org_id, seq, cardinality(moved);
END
$$;

REVOKE UPDATE, DELETE, TRUNCATE ON audit_pending FROM liftoff_app;
REVOKE INSERT ON audit_events FROM liftoff_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_chains FROM liftoff_app;
REVOKE EXECUTE ON FUNCTION audit_seal(uuid[], integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_seal_chain(audit_chains, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_seal(uuid[], integer) TO liftoff_app;
