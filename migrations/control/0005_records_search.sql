-- Full-text search over a record's text fields (GET .../records?q=...). The 'simple' configuration
-- (no stemming, no stop words) suits every language the same. A GIN index leading with
-- collection_id (btree_gin) keeps one tenant's search from wading through every tenant's matches.
CREATE EXTENSION IF NOT EXISTS btree_gin;
ALTER TABLE records ADD COLUMN search tsvector;
CREATE INDEX records_search_idx ON records USING gin (collection_id, search);
