# A record of a collection: `data` (jsonb) plus the slot columns that hold indexed values and the
# `search` tsvector, written as Liftoff writes them so both servers read each other's rows.
class Record < ApplicationRecord
  self.table_name = "records"
  self.primary_key = "id"
  self.ignored_columns = ["search"] # written by SQL below, never read back

  SLOT_VALUES = "$5, $6, $7, $8::numeric, $9::numeric, $10::timestamptz, $11::timestamptz, $12, $13".freeze
  INSERT = "INSERT INTO records (collection_id, id, org_id, data, t1, t2, t3, n1, n2, d1, d2, u1, u2, " \
           "search, layout) VALUES ($1, $2, $3, $4::jsonb, #{SLOT_VALUES}, to_tsvector('simple', $14), $15) " \
           "RETURNING version, created_at, updated_at".freeze
  UPDATE = "UPDATE records SET data = $4::jsonb, version = version + 1, updated_at = now(), " \
           "(t1, t2, t3, n1, n2, d1, d2, u1, u2) = (#{SLOT_VALUES}), search = to_tsvector('simple', $14), " \
           "layout = $15 WHERE collection_id = $1 AND id = $2 AND org_id = $3 " \
           "RETURNING version, created_at, updated_at".freeze

  # A new record of `collection` holding the validated `data`.
  def self.insert!(collection, data)
    record = new(id: Uuid7.generate, collection_id: collection.id, org_id: collection.org_id, data: data)
    record.write!(INSERT, collection)
  end

  # Stores validated `data` as the next version (the row is locked by the caller).
  def replace!(collection, data)
    self.data = data
    write!(UPDATE, collection)
  end

  def write!(sql, collection)
    values = [collection.id, id, collection.org_id, data.to_json, *collection.slot_values(data),
              collection.search_text(data), collection.layout]
    binds = values.map { |v| ActiveRecord::Relation::QueryAttribute.new("", v, ActiveRecord::Type::Value.new) }
    row = self.class.connection.exec_query(sql, "record write", binds, prepare: true).first
    self.version = row["version"]
    self.created_at = row["created_at"]
    self.updated_at = row["updated_at"]
    self
  end

  def as_api_json
    { id: id, version: version, created_at: created_at.utc.iso8601(3),
      updated_at: updated_at.utc.iso8601(3), data: data }
  end
end
