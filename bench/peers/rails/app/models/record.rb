# A record of a collection; `n1` holds the indexed priority (the slot Liftoff's schema assigned).
class Record < ApplicationRecord
  self.table_name = "records"
  self.primary_key = "id"

  def as_api_json
    { id: id, version: version, created_at: created_at.utc.iso8601(3),
      updated_at: updated_at.utc.iso8601(3), data: data }
  end
end
