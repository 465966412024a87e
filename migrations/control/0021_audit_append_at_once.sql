-- An event sealed in its own transaction when its chain is free (docs/decisions/0020-audit-sealing.md).
-- Tenant plane.
--
-- Most writes are the only writer of their org at the moment they commit, and where writes spread
-- over many orgs the pending row, its sealing round and its deletion cost more database time than
-- the write itself. audit_append seals such an event at once, as migration 0003's append did: it
-- takes the org's head without waiting (SKIP LOCKED) and, when the org has no pending event,
-- numbers and links the event after the head, inserts it into audit_events and moves the head, in
-- the mutation's transaction. Otherwise (another writer or a sealer holds the head, or events wait
-- before it) the event goes to audit_pending as before, and a sealer links it. No writer ever waits
-- for the head, so one org's concurrent writers still commit in parallel.
--
-- Commit order for one record holds on both paths. A write that depends on another (it waited for
-- a record's row lock the other held, or read what the other wrote) runs this after the other
-- committed. If the other's event is sealed, its seq is at most the head this one links after; if
-- it is pending, this one sees it and goes pending too, with a larger pending_id. Either way this
-- one is sealed after it. (This needs READ COMMITTED, which every write of Liftoff's runs in: each
-- statement below sees what committed before it began.)
--
-- e: the event as a pending row (its pending_id is ignored). Returns the event's seq when it was
-- sealed at once, NULL when it is pending.
CREATE FUNCTION audit_append(e audit_pending)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  chain audit_chains;
  seq bigint;
  hash bytea;
BEGIN
  SELECT * INTO chain FROM audit_chains c WHERE c.org_id = e.org_id FOR UPDATE SKIP LOCKED;
  IF NOT FOUND OR EXISTS (SELECT 1 FROM audit_pending p WHERE p.org_id = e.org_id) THEN
    INSERT INTO audit_pending (org_id, id, occurred_at, actor_type, actor_id, action, target_type,
                               target_id, before, after, ip, user_agent, request_id)
    VALUES (e.org_id, e.id, e.occurred_at, e.actor_type, e.actor_id, e.action, e.target_type,
            e.target_id, e.before, e.after, e.ip, e.user_agent, e.request_id);
    RETURN NULL;
  END IF;
  seq := chain.last_seq + 1;
  hash := sha256(chain.last_hash || convert_to(audit_canonical(
      e.org_id, seq, e.id, e.occurred_at, e.actor_type, e.actor_id, e.action, e.target_type,
      e.target_id, e.before, e.after, e.ip, e.user_agent, e.request_id), 'UTF8'));
  INSERT INTO audit_events (org_id, seq, id, occurred_at, actor_type, actor_id, action, target_type,
                            target_id, before, after, ip, user_agent, request_id, prev_hash, hash)
  VALUES (e.org_id, seq, e.id, e.occurred_at, e.actor_type, e.actor_id, e.action, e.target_type,
          e.target_id, e.before, e.after, e.ip, e.user_agent, e.request_id, chain.last_hash, hash);
  UPDATE audit_chains c SET last_seq = seq, last_prev = chain.last_hash, last_hash = hash
  WHERE c.org_id = e.org_id;
  RETURN seq;
END
$$;

REVOKE EXECUTE ON FUNCTION audit_append(audit_pending) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_append(audit_pending) TO liftoff_app;
