-- How many bytes of JSON text each record's data is, written with the record: what a batch would read
-- is then known from one index lookup per record, before it reads any (docs/decisions/0008). Rows
-- written before this migration have NULL; readers fall back to the stored size (pg_column_size),
-- and their next write (or a rewrite after a schema change) fills it in. Adding a nullable column
-- rewrites nothing.
ALTER TABLE records ADD COLUMN data_bytes integer;
