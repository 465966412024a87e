# A collection and its typed schema (`fields`, as Liftoff stores it: each field's type, rules and
# the slot column that holds its indexed value).
class Collection < ApplicationRecord
  SLOTS = %w[t1 t2 t3 n1 n2 d1 d2 u1 u2].freeze

  # [the record's data after defaults, {field => message}] (valid when the second is empty).
  def validate(data)
    errors = {}
    known = fields.map { |f| f["name"] }
    (data.keys - known).each { |name| errors[name] = "is not a field of this collection" }
    out = {}
    fields.each do |f|
      name = f["name"]
      value = data.key?(name) ? data[name] : f["default"]
      if value.nil?
        errors[name] = "is required" if f["required"]
        next
      end
      problem = type_problem(f, value)
      problem ? errors[name] = problem : out[name] = value
    end
    [out, errors]
  end

  # The slot columns' values for `data` (nil where no field uses the slot), in SLOTS order.
  def slot_values(data)
    SLOTS.map do |slot|
      field = fields.find { |f| f["slot"] == slot || f["unique_slot"] == slot }
      value = field && data[field["name"]]
      value.nil? ? nil : value.to_s
    end
  end

  # The words full-text search finds a record by.
  def search_text(data)
    fields.flat_map do |f|
      value = data[f["name"]]
      case f["type"]
      when "text", "enum" then value.is_a?(String) ? [value] : []
      when "list_of_text" then value.is_a?(Array) ? value.grep(String) : []
      else []
      end
    end.map { |word| "#{word} " }.join
  end

  private

  def type_problem(field, value)
    case field["type"]
    when "text"
      return "must be a string" unless value.is_a?(String)
      "must be at most #{field['max_length']} characters" if value.length > field["max_length"]
    when "integer" then "must be an integer" unless value.is_a?(Integer)
    when "number" then "must be a number" unless value.is_a?(Numeric)
    when "boolean" then "must be true or false" unless [true, false].include?(value)
    when "enum" then "must be one of #{field['values'].join(', ')}" unless field["values"].include?(value)
    when "datetime"
      begin
        Time.iso8601(value) && nil
      rescue ArgumentError, TypeError
        "must be an RFC 3339 date-time"
      end
    when "list_of_text" then "must be a list of strings" unless value.is_a?(Array) && value.all?(String)
    when "relation" then "must be a record id" unless value.is_a?(String) && value.match?(/\A\h{8}-(\h{4}-){3}\h{12}\z/)
    end
  end
end
