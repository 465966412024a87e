-- The shard outbox (docs/decisions/0021-tenant-shards.md). A change of the control plane for an
-- organization whose tenant plane is on another cluster (renaming it, its members, keys,
-- invitations, plan) cannot write the org's audit event or job in its own transaction. It posts
-- them here, on the control cluster, in that transaction; a relay writes them on the org's shard
-- and deletes them here afterwards.
CREATE TABLE shard_outbox (
  seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- the relay's order
  id        uuid NOT NULL UNIQUE,  -- the event's or job's own id: the shard's inbox key
  org_id    uuid NOT NULL,
  shard     text NOT NULL,  -- where the org's tenant plane was when posted
  kind      text NOT NULL,  -- the receiver that writes it there ('audit', 'jobs')
  body      jsonb NOT NULL,
  posted_at timestamptz NOT NULL DEFAULT now()
);

-- On every shard: the ids the relay delivered there, so that an item relayed again (the relay
-- stopped between the shard's commit and the outbox's delete) is written once. Kept a week.
CREATE TABLE shard_inbox (
  id          uuid PRIMARY KEY,
  org_id      uuid NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shard_inbox_received_idx ON shard_inbox (received_at);
