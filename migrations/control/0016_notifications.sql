-- In-app notifications (src/liftoff/notify, docs/decisions/0015-notifications.md). Control plane:
-- a feed belongs to a user, whatever orgs the notifications are about.
--
-- Each user's notifications are numbered 1, 2, 3, ... by notification_heads, whose row a delivery
-- locks (INSERT ... ON CONFLICT DO UPDATE) until it commits: a user's seqs are gap-free and in
-- commit order, so a stream that has shown seq n resumes by reading seq > n and misses nothing.
-- The head also counts the unread notifications, so the badge costs one row read.
CREATE TABLE notification_heads (
  user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  seq     bigint NOT NULL,
  unread  bigint NOT NULL CHECK (unread >= 0)
);

CREATE TABLE notifications (
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  seq        bigint NOT NULL,
  id         uuid NOT NULL UNIQUE,
  -- The org it is about, if one. A purged org's notifications stay (their data names it), so that
  -- the unread counts stay true.
  org_id     uuid REFERENCES orgs (id) ON DELETE SET NULL,
  kind       text NOT NULL,
  title      text NOT NULL,
  body       text NOT NULL,
  link       text,
  data       jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  read_at    timestamptz,
  PRIMARY KEY (user_id, seq)
);
CREATE INDEX notifications_unread_idx ON notifications (user_id, seq) WHERE read_at IS NULL;
CREATE INDEX notifications_created_at_idx ON notifications (created_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON notification_heads, notifications TO liftoff_app;

-- A stream ticket opens an org's collection's event stream, or (with neither) the notification
-- feed of the user whose session it stands for.
ALTER TABLE stream_tickets ALTER COLUMN org_id DROP NOT NULL, ALTER COLUMN collection DROP NOT NULL,
  ADD CONSTRAINT stream_tickets_one_stream CHECK ((org_id IS NULL) = (collection IS NULL));
