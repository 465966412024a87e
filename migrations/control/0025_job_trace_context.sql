-- Trace context carried into jobs (docs/decisions/0023-tracing.md): the W3C traceparent of the
-- span that enqueued a job (a request's), so that the job's run, its statements and the calls it
-- makes (webhooks, email) are spans of the same trace. NULL: enqueued outside any trace.
-- Tenant plane, like the jobs table. A column without a default: no rewrite of the table.
ALTER TABLE jobs ADD COLUMN traceparent text;
