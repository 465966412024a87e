-- Sealing in sets (docs/decisions/0020-audit-sealing.md). Tenant plane.
--
-- audit_seal (0019) sealed org by org: per org a query for its pending events, per event an
-- INSERT, per org a DELETE and an UPDATE of the head. Where writes spread over many orgs a round
-- seals about one event per org, so each event paid for all of those statements. This version
-- runs each step once per round for every org it took: one statement locks the heads, one takes
-- (deletes) their oldest pending events, one inserts them all sealed, one moves every head. Only
-- hashing stays a loop, over values in memory: each hash needs the one before it. What is sealed,
-- in which order, and how it is hashed are unchanged, so chains verify the same whichever version
-- sealed them.
CREATE OR REPLACE FUNCTION audit_seal(orgs uuid[], max_per_org integer)
RETURNS TABLE (org_id uuid, last_seq bigint, sealed integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  heads audit_chains[];
  events audit_pending[];
  e audit_pending;
  -- Per event, in the order of events: its number, the hash before it and its own.
  seqs bigint[] := '{}';
  prevs bytea[] := '{}';
  hashes bytea[] := '{}';
  -- Per org sealed: its new head and how many events it took.
  head_orgs uuid[] := '{}';
  head_seqs bigint[] := '{}';
  head_prevs bytea[] := '{}';
  head_hashes bytea[] := '{}';
  head_counts integer[] := '{}';
  h integer := 0;  -- the index in heads of the chain being extended
  n integer := 0;  -- the number of heads moved so far
  i integer := 0;  -- the index in events of the event being linked
  first integer;   -- the index in events of the first event of the chain being extended
  seq bigint;
  prev bytea;
  hash bytea;
BEGIN
  -- Lock the heads of the orgs with pending events, in org order (two barriers never deadlock).
  -- An org with nothing pending is not locked: a barrier over a sealed chain writes nothing.
  IF orgs IS NULL THEN
    SELECT array_agg(c ORDER BY c.org_id) INTO heads FROM (
      SELECT * FROM audit_chains a
      -- An array, not a join: the heads are found through the primary key, however large
      -- audit_chains grows.
      WHERE a.org_id = ANY (ARRAY(SELECT DISTINCT p.org_id FROM audit_pending p))
      ORDER BY a.org_id FOR UPDATE SKIP LOCKED) c;
  ELSE
    SELECT array_agg(c ORDER BY c.org_id) INTO heads FROM (
      SELECT * FROM audit_chains a
      WHERE a.org_id = ANY (orgs)
        AND EXISTS (SELECT 1 FROM audit_pending p WHERE p.org_id = a.org_id)
      ORDER BY a.org_id FOR UPDATE) c;
  END IF;
  IF heads IS NULL THEN
    RETURN;
  END IF;

  -- Take up to max_per_org pending events of each, oldest pending_id first, found through the
  -- (org_id, pending_id) index and deleted by their row address: pending rows are never updated,
  -- and no other sealer deletes rows of these orgs while this one holds their heads. Exactly
  -- these rows are sealed: one with a smaller pending_id that committed after this statement
  -- began waits for the next round.
  WITH taken AS (
    DELETE FROM audit_pending p
    WHERE p.ctid = ANY (ARRAY(
      SELECT o.ctid FROM unnest(heads) AS c
      CROSS JOIN LATERAL (SELECT q.ctid FROM audit_pending q WHERE q.org_id = c.org_id
                          ORDER BY q.pending_id LIMIT max_per_org) o))
    RETURNING p.*)
  SELECT array_agg(t ORDER BY t.org_id, t.pending_id) INTO events FROM taken t;
  IF events IS NULL THEN
    RETURN;  -- another sealer sealed them before this one could lock their heads
  END IF;

  -- Link each org's events after its head. events and heads are both in org order.
  FOREACH e IN ARRAY events LOOP
    IF h = 0 OR (heads[h]).org_id <> e.org_id THEN
      IF h > 0 THEN
        n := n + 1;
        head_orgs[n] := (heads[h]).org_id;
        head_seqs[n] := seq;
        head_prevs[n] := prev;
        head_hashes[n] := hash;
        head_counts[n] := i - first + 1;
      END IF;
      first := i + 1;
      LOOP
        h := h + 1;
        IF h > cardinality(heads) THEN  -- cannot happen: events are taken for these heads only
          RAISE EXCEPTION 'audit_seal: an event of org % without its head', e.org_id;
        END IF;
        EXIT WHEN (heads[h]).org_id = e.org_id;
      END LOOP;
      seq := (heads[h]).last_seq;
      prev := (heads[h]).last_prev;
      hash := (heads[h]).last_hash;
    END IF;
    seq := seq + 1;
    prev := hash;
    hash := sha256(prev || convert_to(audit_canonical(
        e.org_id, seq, e.id, e.occurred_at, e.actor_type, e.actor_id, e.action, e.target_type,
        e.target_id, e.before, e.after, e.ip, e.user_agent, e.request_id), 'UTF8'));
    i := i + 1;
    seqs[i] := seq;
    prevs[i] := prev;
    hashes[i] := hash;
  END LOOP;
  n := n + 1;
  head_orgs[n] := (heads[h]).org_id;
  head_seqs[n] := seq;
  head_prevs[n] := prev;
  head_hashes[n] := hash;
  head_counts[n] := i - first + 1;

  INSERT INTO audit_events (org_id, seq, id, occurred_at, actor_type, actor_id, action,
                            target_type, target_id, before, after, ip, user_agent, request_id,
                            prev_hash, hash)
  SELECT ev.org_id, l.seq, ev.id, ev.occurred_at, ev.actor_type, ev.actor_id, ev.action,
         ev.target_type, ev.target_id, ev.before, ev.after, ev.ip, ev.user_agent, ev.request_id,
         l.prev, l.hash
  FROM unnest(events) WITH ORDINALITY AS ev
  JOIN unnest(seqs, prevs, hashes) WITH ORDINALITY AS l(seq, prev, hash, k) ON l.k = ev.ordinality;

  UPDATE audit_chains c SET last_seq = m.seq, last_prev = m.prev, last_hash = m.hash
  FROM unnest(head_orgs, head_seqs, head_prevs, head_hashes) AS m(org_id, seq, prev, hash)
  WHERE c.org_id = m.org_id;

  RETURN QUERY SELECT * FROM unnest(head_orgs, head_seqs, head_counts);
END
$$;

-- The org-by-org step of 0019 is not used any more.
DROP FUNCTION audit_seal_chain(audit_chains, integer);
