-- The search index takes a record's words when the record is written (fastupdate off), not through
-- GIN's pending list. With the list, every search read the whole list (up to 4 MB) besides the
-- index: measured, a search in a ten-record collection took 4.6 ms with the list 10 s of creates
-- long and 1.0 ms without; and the write that found the list full merged all of it into the index
-- before it could commit. Writes pay a little more, always the same.
ALTER INDEX records_search_idx SET (fastupdate = off);
SELECT gin_clean_pending_list('records_search_idx'::regclass);
