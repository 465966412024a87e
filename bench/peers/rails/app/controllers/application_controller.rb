require "digest"

class ApplicationController < ActionController::API
  WRITERS = %w[member admin owner].freeze
  AUDIT_READERS = %w[admin owner].freeze

  private

  def problem(status, detail, errors = nil)
    body = { type: "about:blank", status: status, detail: detail }
    body[:errors] = errors if errors
    render status: status, content_type: "application/problem+json", json: body
  end

  # The request body as a JSON object, or renders 400 and returns nil.
  def json_object
    body = JSON.parse(request.raw_post)
    return body if body.is_a?(Hash)
    problem(400, "the body must be a JSON object")
    nil
  rescue JSON::ParserError
    problem(400, "the body is not valid JSON")
    nil
  end

  # The user behind `Authorization: Bearer <token>`: the same session table and token scheme as
  # Liftoff (SHA-256 of the token).
  def current_user
    return @current_user if defined?(@current_user)
    token = request.authorization.to_s[/\ABearer (.+)\z/i, 1]
    session = token && UserSession.includes(:user)
                                  .where(token_hash: Digest::SHA256.digest(token), revoked_at: nil)
                                  .where("expires_at > now()").first
    @current_user = session&.user
  end

  def authenticate!
    problem(401, "missing or invalid bearer token") unless current_user
  end

  # The caller's membership in the path's org, or 404.
  def membership!
    @membership = Membership.find_by(org_id: params[:org], user_id: current_user.id)
    problem(404, "no such organization") unless @membership
  end

  def role!(allowed)
    problem(403, "your role in this organization does not allow this") unless allowed.include?(@membership.role)
  end
end
