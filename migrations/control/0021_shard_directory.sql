-- The shard directory (docs/decisions/0021-tenant-shards.md). Control plane: the shard that holds each
-- organization's tenant-plane data. Every organization so far is on main, the control database's own
-- shard; placement and moves change it.
ALTER TABLE orgs ADD COLUMN shard text NOT NULL DEFAULT 'main'
  CONSTRAINT orgs_shard_name CHECK (shard ~ '^[a-z][a-z0-9-]{0,31}$');
CREATE INDEX orgs_shard_idx ON orgs (shard);
