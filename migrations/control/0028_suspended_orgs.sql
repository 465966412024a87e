-- The organizations suspended now (docs/decisions/0025-operators-console.md), which every job worker
-- reads each refresh to hold their jobs and webhook deliveries: a partial index of the few suspended
-- live orgs, so that read costs the same with a million orgs as with ten.
CREATE INDEX orgs_suspended_idx ON orgs (id) WHERE suspended_at IS NOT NULL AND deleted_at IS NULL;
