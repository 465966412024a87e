require "rbnacl"
require "securerandom"

# POST /v1/auth/login: Argon2id verification with libsodium (rbnacl), as Liftoff does, against the
# stored hash; a decoy hash for unknown addresses so both answers take as long.
class SessionsController < ApplicationController
  DECOY = RbNaCl::PasswordHash.argon2_str("decoy password", 2, 64 * 1024 * 1024)
  SESSION_TTL = 30 * 24 * 3600

  def create
    body = json_object or return
    email, password = body.values_at("email", "password")
    return problem(400, "email and password must be strings") unless email.is_a?(String) && password.is_a?(String)
    user = User.find_by(email: email.strip.downcase)
    verified = RbNaCl::PasswordHash.argon2_valid?(password, user&.password_hash || DECOY)
    return problem(401, "invalid email or password") unless user && verified
    token = "ls_#{SecureRandom.urlsafe_base64(32)}"
    session = UserSession.create!(id: Uuid7.generate, user: user, token_hash: Digest::SHA256.digest(token),
                                  expires_at: Time.now + SESSION_TTL, ip: request.remote_ip,
                                  user_agent: request.user_agent.to_s)
    render json: { user: { id: user.id, email: user.email, name: user.name,
                           created_at: user.created_at.utc.iso8601(3) },
                   session_id: session.id, token: token, expires_at: session.expires_at.utc.iso8601(3) }
  end
end
