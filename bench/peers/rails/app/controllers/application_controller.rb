require "digest"

class ApplicationController < ActionController::API
  private

  def problem(status, detail)
    render status: status, content_type: "application/problem+json",
           json: { type: "about:blank", status: status, detail: detail }
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
end
