-- Durable background jobs (src/liftoff/jobs, docs/decisions/0012-jobs.md). A job is a row, enqueued
-- in the transaction of the change that causes it, so it exists exactly when that change commits.
-- Tenant plane: each org's jobs live beside its data (on its shard, once shards exist); the
-- platform's own work (periodic maintenance) carries the nil org id.
--
-- States: ready (waits for run_at), running (leased by a worker until leased_until, renewed by its
-- heartbeat; an expired lease means the worker is gone and the job is ready again), and the final
-- completed, discarded (out of attempts, or failed for good) and cancelled.
CREATE TABLE jobs (
  id           uuid PRIMARY KEY,  -- UUIDv7: time-ordered
  org_id       uuid NOT NULL,
  queue        text NOT NULL,
  kind         text NOT NULL,
  args         jsonb NOT NULL,
  priority     smallint NOT NULL DEFAULT 0,  -- higher first, within a queue and an org
  state        text NOT NULL DEFAULT 'ready'
                 CHECK (state IN ('ready', 'running', 'completed', 'discarded', 'cancelled')),
  run_at       timestamptz NOT NULL DEFAULT now(),
  attempt      integer NOT NULL DEFAULT 0,  -- attempts started so far
  max_attempts integer NOT NULL CHECK (max_attempts >= 1),
  timeout_ms   integer NOT NULL CHECK (timeout_ms > 0),
  lease_owner  text,
  leased_until timestamptz,
  last_error   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  finished_at  timestamptz
);
-- The fetch: per queue, the orgs with ready jobs in id order (round robin between tenants), and
-- each org's next jobs by priority and time.
CREATE INDEX jobs_ready_idx ON jobs (queue, org_id, priority DESC, run_at, id) WHERE state = 'ready';
-- Per-org running counts (fairness), and leases that expired (rescue).
CREATE INDEX jobs_running_idx ON jobs (queue, org_id) WHERE state = 'running';
CREATE INDEX jobs_leases_idx ON jobs (leased_until) WHERE state = 'running';
-- Pruning finished jobs after their retention; an org's listing, newest first.
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE state IN ('completed', 'discarded', 'cancelled');
CREATE INDEX jobs_org_idx ON jobs (org_id, id);
GRANT SELECT, INSERT, UPDATE, DELETE ON jobs TO liftoff_app;

-- Unique jobs: a key claimed by a job for a window; another job with the same key is not enqueued
-- while the claim lasts (the primary key arbitrates between concurrent enqueues).
CREATE TABLE job_unique_keys (
  org_id     uuid NOT NULL,
  key        text NOT NULL,
  job_id     uuid NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (org_id, key)
);
CREATE INDEX job_unique_keys_expires_at_idx ON job_unique_keys (expires_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON job_unique_keys TO liftoff_app;

-- Periodic jobs: the last tick of each schedule that enqueued its job. Every worker of the fleet
-- tries to claim each tick; the row's update lets exactly one of them win it.
CREATE TABLE job_schedules (
  name      text PRIMARY KEY,
  last_tick timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON job_schedules TO liftoff_app;
