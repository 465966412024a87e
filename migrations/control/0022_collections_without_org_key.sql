-- Collections no longer reference orgs (docs/decisions/0021-tenant-shards.md): a foreign key cannot
-- cross clusters, and an org's collections will live on its shard while its row stays in the control
-- database. The purge of an org deletes its collections (and by cascade their records) itself, before
-- the org's row (OrgOptions::purge_tenant).
ALTER TABLE collections DROP CONSTRAINT collections_org_id_fkey;
