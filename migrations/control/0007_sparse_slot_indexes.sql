-- Slot indexes hold only the records whose slot is filled. A collection uses few of the seven
-- indexed slots (none, for a collection without indexed fields), yet a full index keeps an entry
-- for every record in each of them: measured at 2.2M records, five unused slot indexes took 825 MB
-- (more than the table) and every insert and every non-HOT update wrote all seven.
--
-- Filters on a slot compare it with strict operators (which imply IS NOT NULL); sorts, on required
-- fields only, say `slot IS NOT NULL` (records/query.cpp). `IS NULL` filters scan the collection
-- through the primary key, as filters on unindexed fields do.
--
-- Rebuilding takes a SHARE lock on records (reads go on, writes wait) for as long as the builds
-- take: seconds per million filled slots. Nothing here can be CONCURRENTLY: migrations run in
-- one transaction.
DROP INDEX records_t1_idx, records_t2_idx, records_t3_idx, records_n1_idx, records_n2_idx,
  records_d1_idx, records_d2_idx;
CREATE INDEX records_t1_idx ON records (collection_id, t1, id) WHERE t1 IS NOT NULL;
CREATE INDEX records_t2_idx ON records (collection_id, t2, id) WHERE t2 IS NOT NULL;
CREATE INDEX records_t3_idx ON records (collection_id, t3, id) WHERE t3 IS NOT NULL;
CREATE INDEX records_n1_idx ON records (collection_id, n1, id) WHERE n1 IS NOT NULL;
CREATE INDEX records_n2_idx ON records (collection_id, n2, id) WHERE n2 IS NOT NULL;
CREATE INDEX records_d1_idx ON records (collection_id, d1, id) WHERE d1 IS NOT NULL;
CREATE INDEX records_d2_idx ON records (collection_id, d2, id) WHERE d2 IS NOT NULL;
