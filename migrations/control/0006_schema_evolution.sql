-- Schema evolution: renaming and dropping fields and changing their indexing without blocking the
-- tenant's writes (docs/decisions/0006-schema-evolution.md). A collection's `layout` counts the
-- changes that affect how records are stored; each record remembers the layout it was written
-- with, reads bring older records up to date on the fly, and a background rewrite brings the
-- stored rows up to date in small batches, after which the history is forgotten.

-- Constant defaults: metadata-only in PostgreSQL 11+, no table rewrite.
ALTER TABLE records ADD COLUMN layout integer NOT NULL DEFAULT 0;
ALTER TABLE collections
  ADD COLUMN layout integer NOT NULL DEFAULT 0,
  -- {"steps": [{"layout": n, "from": "a", "to": "b" | null}], "draining": ["t2", ...]}: what a
  -- record of an older layout needs to look current, and slots that hold old values until the
  -- rewrite clears them.
  ADD COLUMN evolution jsonb NOT NULL DEFAULT '{}';

-- Collections whose records are being rewritten to their current layout, and how far the rewrite
-- got (keyset over record ids). One process works on a collection at a time (its row is locked).
CREATE TABLE collection_rewrites (
  collection_id uuid PRIMARY KEY REFERENCES collections (id) ON DELETE CASCADE,
  layout        integer NOT NULL,
  after_id      uuid,
  started_at    timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE, DELETE ON collection_rewrites TO liftoff_app;
