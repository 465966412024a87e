class RecordsController < ApplicationController
  before_action :authenticate!
  before_action :membership!
  before_action -> { role!(WRITERS) }, only: %i[create update]
  before_action :collection!

  def show
    record = Record.find_by(collection_id: @collection.id, id: params[:id])
    return problem(404, "no such record") unless record
    render json: record.as_api_json
  end

  # ?limit=&filter=priority = N (the benchmark's list, through the index Liftoff uses) or ?q= (full-text
  # search, ranked, on the same tsvector and GIN index).
  def index
    limit = Integer(params.fetch(:limit, 20)).clamp(1, 200)
    scope = Record.where(collection_id: @collection.id, org_id: params[:org])
    if params[:filter].present?
      priority = params[:filter][/\Apriority = (\d+)\z/, 1]
      return problem(400, "filter: only 'priority = N' is implemented by this peer") unless priority
      scope = scope.where(n1: priority.to_i)
    end
    if params[:q].present?
      query = Record.sanitize_sql(["websearch_to_tsquery('simple', ?)", params[:q]])
      scope = scope.where("search @@ #{query}").order(Arel.sql("ts_rank(search, #{query}) DESC"))
    end
    rows = scope.order(id: :desc).limit(limit + 1).to_a
    render json: { records: rows.first(limit).map(&:as_api_json),
                   next_cursor: rows.size > limit ? rows[limit - 1].id : nil }
  rescue ArgumentError
    problem(400, "limit must be an integer")
  end

  def create
    body = json_object or return
    data, errors = @collection.validate(body)
    return problem(422, "the record is invalid", errors) if errors.any?
    record = Record.transaction do
      Record.insert!(@collection, data).tap do |r|
        audit!("record.created", r.id, nil, r.as_api_json.to_json)
      end
    end
    render status: :created, json: record.as_api_json
  end

  # JSON merge patch (RFC 7396) of the record's data.
  def update
    patch = json_object or return
    outcome = Record.transaction do
      record = Record.lock.find_by(collection_id: @collection.id, id: params[:id], org_id: @collection.org_id)
      next [404, "no such record"] unless record
      before = record.as_api_json.to_json
      merged = merge_patch(record.data, patch)
      data, errors = @collection.validate(merged)
      next [422, errors] if errors.any?
      record.replace!(@collection, data)
      audit!("record.updated", record.id, before, record.as_api_json.to_json)
      record
    end
    return render(json: outcome.as_api_json) if outcome.is_a?(Record)
    outcome.first == 404 ? problem(404, outcome.last) : problem(422, "the record is invalid", outcome.last)
  end

  private

  def collection!
    @collection = Collection.find_by(org_id: params[:org], name: params[:collection])
    problem(404, "no such collection") unless @collection
  end

  def merge_patch(target, patch)
    patch.each_with_object(target.dup) do |(key, value), out|
      if value.nil? then out.delete(key)
      elsif value.is_a?(Hash) && out[key].is_a?(Hash) then out[key] = merge_patch(out[key], value)
      else out[key] = value
      end
    end
  end

  def audit!(action, id, before, after)
    AuditEvent.append!(org_id: @collection.org_id, actor_id: current_user.id, action: action,
                       target_type: @collection.name, target_id: id, before: before, after: after,
                       request: request)
  end
end
