# The org's hash-chained audit log, appended exactly as Liftoff appends it (src/liftoff/audit/audit.cpp):
# one statement advances the chain head (locking it until commit), hashes the canonical event with
# the previous hash, and inserts the event, so `liftoff audit verify` accepts what the peer writes.
class AuditEvent < ApplicationRecord
  self.table_name = "audit_events"
  self.ignored_columns = ["hash"] # shadows Object#hash: read as hash_hex (see .listed)

  # The newest `limit` events before `before_seq`, newest first.
  def self.listed(org_id, limit, before_seq = nil)
    scope = where(org_id: org_id)
    scope = scope.where("seq < ?", before_seq) if before_seq
    scope.select(:seq, :id, :occurred_at, :actor_type, :actor_id, :action, :target_type, :target_id,
                 :before, :after, :ip, :user_agent, :request_id, "encode(hash, 'hex') AS hash_hex").order(seq: :desc).limit(limit)
  end

  # Parameters are cast to their columns' types first, so PostgreSQL infers the same types Liftoff sends.
  CANONICAL = "json_build_array(org_id::text, last_seq + 1, $2::uuid::text, " \
              "(extract(epoch FROM $3::timestamptz) * 1000000)::bigint, $4::text, $5::uuid::text, " \
              "$6::text, $7::text, $8::text, $9::json::text, $10::json::text, $11::text, $12::text, " \
              "$13::text)::text".freeze
  APPEND = "WITH head AS (UPDATE audit_chains SET last_seq = last_seq + 1, last_prev = last_hash, " \
           "last_hash = sha256(last_hash || convert_to(#{CANONICAL}, 'UTF8')) WHERE org_id = $1 " \
           "RETURNING last_seq, last_prev, last_hash) " \
           "INSERT INTO audit_events (org_id, seq, id, occurred_at, actor_type, actor_id, action, " \
           "target_type, target_id, before, after, ip, user_agent, request_id, prev_hash, hash) " \
           "SELECT $1, last_seq, $2, $3, $4, $5, $6, $7, $8, $9::json, $10::json, $11, $12, $13, " \
           "last_prev, last_hash FROM head RETURNING seq".freeze

  # Appends inside the caller's transaction.
  def self.append!(org_id:, actor_id:, action:, target_type:, target_id:, before:, after:, request:)
    now = Time.now.utc
    values = [org_id, Uuid7.generate, now.iso8601(6), "user", actor_id, action, target_type, target_id,
              before, after, request.remote_ip.to_s, request.user_agent.to_s, request.request_id.to_s]
    connection.exec_query(APPEND, "audit append", values.map { |v| bind(v) }, prepare: true)
  end

  def self.bind(value)
    ActiveRecord::Relation::QueryAttribute.new("", value, ActiveRecord::Type::Value.new)
  end

  def as_api_json
    { id: id, seq: seq, occurred_at: occurred_at.utc.iso8601(6).sub(/(\.\d{3})\d*/, '\1'),
      actor: { type: actor_type, id: actor_id }, action: action,
      target: { type: target_type, id: target_id }, before: before, after: after,
      ip: ip, user_agent: user_agent, request_id: request_id, hash: self[:hash_hex] }
  end
end
