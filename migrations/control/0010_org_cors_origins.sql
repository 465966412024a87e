-- Each organization's own CORS origins: the front ends (scheme://host[:port]) whose pages may call
-- the API from a browser on the org's routes, beside the deployment's cors_origins. Every process
-- keeps them all in memory (a preflight carries no credentials and must not cost a round trip), so
-- it reads the orgs that have any at start and on reconnect: the partial index keeps that read
-- small however many orgs have none. Adding a column with a constant default rewrites nothing.
ALTER TABLE orgs ADD COLUMN cors_origins jsonb NOT NULL DEFAULT '[]'
  CONSTRAINT orgs_cors_origins_array CHECK (jsonb_typeof(cors_origins) = 'array');
CREATE INDEX orgs_with_cors_origins_idx ON orgs (id) WHERE cors_origins <> '[]';
