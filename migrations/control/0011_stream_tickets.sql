-- Stream tickets: a browser's EventSource cannot send Authorization, so a client exchanges its token
-- for a ticket that opens one org's collection's event stream, once, within seconds
-- (IdentityService::issue_stream_ticket). Stored as the SHA-256 of the ticket; the credential it
-- stands for as that credential's own digest (the stream checks access again with it). Used
-- tickets are deleted at once; expired ones by the housekeeping, found by expires_at.
CREATE TABLE stream_tickets (
  token_hash      bytea PRIMARY KEY,
  credential_hash bytea NOT NULL,
  credential_kind text NOT NULL CHECK (credential_kind IN ('session', 'api_key')),
  org_id          uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  collection      text NOT NULL,
  expires_at      timestamptz NOT NULL
);
CREATE INDEX stream_tickets_expires_at_idx ON stream_tickets (expires_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON stream_tickets TO liftoff_app;
