# GET /v1/orgs/{org}/audit?limit=&cursor=: the org's audit log, newest first (admins and owners).
class AuditController < ApplicationController
  before_action :authenticate!
  before_action :membership!
  before_action -> { role!(AUDIT_READERS) }

  def index
    limit = Integer(params.fetch(:limit, 50)).clamp(1, 1000)
    cursor = params[:cursor].present? ? Integer(params[:cursor]) : nil
    events = AuditEvent.listed(params[:org], limit, cursor).to_a
    render json: { events: events.map(&:as_api_json),
                   next_cursor: events.size == limit && events.last.seq > 1 ? events.last.seq.to_s : nil }
  rescue ArgumentError
    problem(400, "limit and cursor must be integers")
  end
end
