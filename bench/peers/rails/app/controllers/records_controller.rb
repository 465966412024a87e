class RecordsController < ApplicationController
  before_action :authenticate!
  before_action :membership!
  before_action :collection!

  def show
    record = Record.find_by(collection_id: @collection.id, id: params[:id])
    return problem(404, "no such record") unless record
    render json: record.as_api_json
  end

  # ?limit=&filter=priority = N: the benchmark's list, through the same index Liftoff uses.
  def index
    limit = Integer(params.fetch(:limit, 20)).clamp(1, 200)
    scope = Record.where(collection_id: @collection.id, org_id: params[:org])
    if params[:filter].present?
      priority = params[:filter][/\Apriority = (\d+)\z/, 1]
      return problem(400, "filter: only 'priority = N' is implemented by this peer") unless priority
      scope = scope.where(n1: priority.to_i)
    end
    rows = scope.order(id: :desc).limit(limit + 1).to_a
    render json: { records: rows.first(limit).map(&:as_api_json),
                   next_cursor: rows.size > limit ? rows[limit - 1].id : nil }
  end

  private

  def collection!
    @collection = Collection.find_by(org_id: params[:org], name: params[:collection])
    problem(404, "no such collection") unless @collection
  end
end
