-- Account email (src/liftoff/identity/account_mail.cpp, docs/decisions/0014-email.md). Control plane,
-- beside users and invitations.
--
-- A user's address is verified when they open the link of a verification email (or reset their
-- password through a link sent there). The tokens of those links are stored as SHA-256 digests,
-- like every bearer secret: a token is made when its email is sent (by the job that sends it, so
-- the token in the clear exists only in memory and in the email), works once, and replaces the
-- user's earlier token of the same purpose.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

CREATE TABLE email_tokens (
  token_hash bytea PRIMARY KEY,
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
  email      text NOT NULL,  -- the address it was sent to: verifying it verifies only that one
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX email_tokens_user_idx ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_expires_idx ON email_tokens (expires_at);

-- An invitation's email carries a token of its own, made when the email is sent; either token
-- (the one the API returned to the inviter, or the emailed one) accepts the invitation.
ALTER TABLE invitations ADD COLUMN email_token_hash bytea;
CREATE UNIQUE INDEX invitations_email_token_hash_key ON invitations (email_token_hash)
  WHERE email_token_hash IS NOT NULL;
