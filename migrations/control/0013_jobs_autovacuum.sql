-- The jobs table is a queue: every job is an insert and two updates, and its size swings from
-- empty to a million rows and back within minutes. PostgreSQL's defaults vacuum and analyze a
-- table after a fifth (a tenth) of it changed, so a busy queue ran for long on the statistics of
-- an empty one, and its partial indexes filled with dead entries that every fetch and rescue
-- stepped over. Vacuum and analyze it after a small fixed amount of churn instead, and let its
-- vacuum run unthrottled (it touches only this table's pages).
ALTER TABLE jobs SET (
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 5000,
  autovacuum_vacuum_insert_scale_factor = 0,
  autovacuum_vacuum_insert_threshold = 5000,
  autovacuum_analyze_scale_factor = 0,
  autovacuum_analyze_threshold = 5000,
  autovacuum_vacuum_cost_delay = 0
);
