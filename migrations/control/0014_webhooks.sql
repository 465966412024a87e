-- Webhooks (src/liftoff/webhooks, docs/decisions/0013-webhooks.md): an org's endpoints receive the
-- org's audit events, in order, signed the Standard Webhooks way. Tenant plane: an endpoint and its
-- deliveries live beside the org's audit log (on its shard, once shards exist).
--
-- An endpoint's cursor (after_seq) is the last audit seq it was sent or skipped (a type it does not
-- subscribe to); events after it are due. Deliveries of one endpoint run one job at a time: the
-- dispatcher claims the endpoint (claim = the delivery job's id, until claimed_until) and the job
-- advances the cursor only under its claim. A failed delivery sets next_attempt_at by the retry
-- schedule; after the last retry the endpoint is disabled and keeps its cursor, so re-enabling it
-- delivers what it missed.
CREATE TABLE webhook_endpoints (
  id                    uuid PRIMARY KEY,
  org_id                uuid NOT NULL,
  url                   text NOT NULL,
  description           text NOT NULL DEFAULT '',
  event_types           text[] NOT NULL,  -- "record.created", "record.*" or "*"
  -- The signing secret, sealed with the server's webhook_key (libsodium secretbox: nonce || box);
  -- the one it replaced stays valid until previous_secret_expires_at.
  secret                bytea NOT NULL,
  previous_secret       bytea,
  previous_secret_expires_at timestamptz,
  enabled               boolean NOT NULL DEFAULT true,
  disabled_reason       text,
  after_seq             bigint NOT NULL,
  failures              integer NOT NULL DEFAULT 0,  -- consecutive failed attempts
  next_attempt_at       timestamptz NOT NULL DEFAULT now(),
  last_error            text,
  claim                 uuid,
  claimed_until         timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_org_idx ON webhook_endpoints (org_id, id);
-- The dispatcher's scan: enabled endpoints whose next attempt is due.
CREATE INDEX webhook_endpoints_due_idx ON webhook_endpoints (next_attempt_at) WHERE enabled;
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints TO liftoff_app;

-- Every attempt to deliver an event, for the endpoint's admins to see and redeliver.
CREATE TABLE webhook_deliveries (
  id          uuid PRIMARY KEY,  -- UUIDv7
  endpoint_id uuid NOT NULL REFERENCES webhook_endpoints ON DELETE CASCADE,
  org_id      uuid NOT NULL,
  event_id    uuid NOT NULL,  -- the audit event's id: the webhook-id header
  seq         bigint NOT NULL,
  event_type  text NOT NULL,
  status      integer,  -- the HTTP status answered; NULL when none was
  error       text,     -- why it failed; NULL when it was delivered (2xx)
  duration_ms integer NOT NULL,
  response    text,     -- the start of the answer's body
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_created_idx ON webhook_deliveries (created_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_deliveries TO liftoff_app;
