-- Platform operators (docs/decisions/0025-operators-console.md): the users who may use the operators'
-- console and its API (/v1/operator/...), across every organization. A role outside any org, granted
-- and revoked only from the command line (`liftoff operators grant --email ...`), by whoever runs
-- the platform. Control plane, beside the users table.
CREATE TABLE platform_operators (
  user_id    uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  granted_at timestamptz NOT NULL DEFAULT now()
);

-- What the console searches and counts (identity/platform.cpp): organizations by a part of their
-- name and users by a part of their email or name (trigram indexes serve `LIKE '%part%'`), and
-- signups by day. pg_trgm is a trusted extension: the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX orgs_name_trgm_idx ON orgs USING gin (lower(name) gin_trgm_ops);
CREATE INDEX users_search_trgm_idx ON users USING gin (lower(email || ' ' || name) gin_trgm_ops);
CREATE INDEX users_created_at_idx ON users (created_at);
