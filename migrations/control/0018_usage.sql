-- Usage metering (src/liftoff/usage, docs/decisions/0019-usage-metering.md). Tenant plane: each
-- row is one organization's hour.
--
-- Counters (API requests, events delivered, jobs enqueued) are added to by each process's batches;
-- records and storage_bytes are gauges, the most the org was measured to hold during the hour (null:
-- not measured that hour). Rows stay after their org is purged: they are the platform's billing
-- record and hold counts only.
CREATE TABLE usage_hourly (
  org_id        uuid NOT NULL,
  hour          timestamptz NOT NULL CHECK (date_trunc('hour', hour) = hour),
  api_requests  bigint NOT NULL DEFAULT 0,
  events        bigint NOT NULL DEFAULT 0,
  jobs          bigint NOT NULL DEFAULT 0,
  records       bigint,
  storage_bytes bigint,
  PRIMARY KEY (org_id, hour)
);

-- Each batch a process wrote, by (process, seq): written in the batch's transaction, so a batch
-- retried after a failure whose outcome was unknown is recognized and not counted twice. Rows are
-- needed only while their process may retry; the meter deletes those older than a day.
CREATE TABLE usage_batches (
  process    uuid NOT NULL,
  seq        bigint NOT NULL,
  written_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (process, seq)
);
CREATE INDEX usage_batches_written_at_idx ON usage_batches (written_at);
