-- Organizations, memberships with roles, invitations, API keys, and the append-only audit log.

CREATE TABLE orgs (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  deleted_at  timestamptz,  -- soft delete: hidden at once, restorable until purge_after
  purge_after timestamptz,
  CONSTRAINT orgs_deleted_has_purge CHECK ((deleted_at IS NULL) = (purge_after IS NULL))
);

CREATE TABLE memberships (
  org_id     uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role       text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user_id_idx ON memberships (user_id);

CREATE TABLE invitations (
  id          uuid PRIMARY KEY,
  org_id      uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  email       text NOT NULL CHECK (email = lower(email)),
  role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
  token_hash  bytea NOT NULL,
  invited_by  uuid NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  accepted_at timestamptz,
  accepted_by uuid,
  revoked_at  timestamptz
);
CREATE UNIQUE INDEX invitations_token_hash_key ON invitations (token_hash);
-- At most one open invitation per address and org.
CREATE UNIQUE INDEX invitations_pending_key ON invitations (org_id, email)
  WHERE accepted_at IS NULL AND revoked_at IS NULL;

CREATE TABLE api_keys (
  id           uuid PRIMARY KEY,
  org_id       uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  name         text NOT NULL,
  role         text NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
  key_hash     bytea NOT NULL,
  created_by   uuid NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_org_id_idx ON api_keys (org_id, created_at);

-- The audit log. Each org's events form a hash chain: hash = SHA-256(prev_hash || canonical event),
-- where the canonical event is json_build_array(...)::text of its columns (one expression, in
-- src/liftoff/audit/audit.cpp, used to append and to verify). before/after are `json`, not
-- `jsonb`, so the stored text is exactly the hashed text.
-- No foreign key to orgs: the log outlives a purged organization.
CREATE TABLE audit_events (
  org_id      uuid NOT NULL,
  seq         bigint NOT NULL,
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
  request_id  text NOT NULL,
  prev_hash   bytea NOT NULL,
  hash        bytea NOT NULL,
  PRIMARY KEY (org_id, seq)
);
CREATE INDEX audit_events_action_idx ON audit_events (org_id, action, seq);
CREATE INDEX audit_events_actor_idx ON audit_events (org_id, actor_id, seq);

-- The head of each org's chain. Appending locks this row, so one org's events are sequenced
-- without gaps while different orgs append in parallel.
CREATE TABLE audit_chains (
  org_id    uuid PRIMARY KEY,
  last_seq  bigint NOT NULL,
  last_hash bytea NOT NULL,
  last_prev bytea  -- the hash before last_hash (what the appended event stores as prev_hash)
);

-- The role the server acts as (config `database_role`): it reads and writes everything except the
-- audit log, which it may only read and append to. Migrations run as the owner of the tables.
DO $$
BEGIN
  CREATE ROLE liftoff_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;  -- another database of this cluster created it (roles are cluster-wide)
END
$$;
DO $$
BEGIN
  -- The migrating role must be able to act as liftoff_app to hand connections to it.
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE format('GRANT liftoff_app TO %I', current_user);
  END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO liftoff_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO liftoff_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO liftoff_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO liftoff_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO liftoff_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM liftoff_app;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON liftoff_schema_migrations FROM liftoff_app;
