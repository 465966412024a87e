#pragma once
// Typed query parameters and row decoding, in PostgreSQL's binary format both ways.
// Supported: bool, int32 (int4), int64 (int8), double (float8), text, bytea, timestamptz, jsonb,
// uuid, and NULL (std::nullopt / std::optional<T>). A column read with the wrong type or a NULL
// read into a non-optional is a bug in the caller: it throws DecodeError, which the request's catch
// site turns into a 500.
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

struct pg_result;

namespace liftoff::db {

using Oid = unsigned int;
using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

struct Json {
  std::string text;  // serialized JSON
  bool operator==(const Json&) const = default;
};

struct Bytes {
  std::string data;  // raw bytes
  bool operator==(const Bytes&) const = default;
};

struct Uuid {
  std::array<std::uint8_t, 16> bytes{};
  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] static std::optional<Uuid> parse(std::string_view text);
  bool operator==(const Uuid&) const = default;
};

// Ids as one text parameter ("id,id,..."), which `string_to_array($n, ',')::uuid[]` reads as an
// array: one statement for any number of ids.
[[nodiscard]] std::string uuid_list(std::span<const Uuid> ids);

// For unordered containers of ids (v4 and v7 ids are random enough in their last eight bytes).
struct UuidHash {
  std::size_t operator()(const Uuid& id) const noexcept {
    std::uint64_t tail = 0;
    std::memcpy(&tail, id.bytes.data() + 8, sizeof tail);
    return std::hash<std::uint64_t>{}(tail);
  }
};

namespace oid {
inline constexpr Oid kBool = 16, kBytea = 17, kName = 19, kInt8 = 20, kInt2 = 21, kInt4 = 23,
                     kText = 25, kOid = 26, kJson = 114, kFloat4 = 700, kFloat8 = 701,
                     kBpchar = 1042, kVarchar = 1043, kTimestamp = 1114, kTimestamptz = 1184,
                     kUuid = 2950, kJsonb = 3802;
}

class DecodeError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Parameters for one statement, encoded as they are added.
class Params {
 public:
  Params() = default;
  template <class... Ts>
  explicit Params(const Ts&... values) {
    (add(values), ...);
  }

  Params& add(bool v);
  Params& add(std::int32_t v);
  Params& add(std::int64_t v);
  Params& add(double v);
  Params& add(std::string_view v);
  Params& add(const std::string& v) { return add(std::string_view(v)); }
  Params& add(const char* v) { return add(std::string_view(v)); }
  Params& add(const Bytes& v);
  Params& add(Timestamp v);
  Params& add(const Json& v);
  Params& add(const Uuid& v);
  template <class T>
  Params& add(const std::optional<T>& v) {
    if (v) return add(*v);
    return add_null(type_oid<T>());
  }
  Params& add_null(Oid type);

  [[nodiscard]] int size() const { return static_cast<int>(types_.size()); }
  [[nodiscard]] const Oid* types() const { return types_.data(); }
  // Pointers into this object: valid until it is modified or destroyed.
  [[nodiscard]] std::vector<const char*> values() const;
  [[nodiscard]] const int* lengths() const { return lengths_.data(); }
  [[nodiscard]] const int* formats() const { return formats_.data(); }

  template <class T>
  static constexpr Oid type_oid();

  // A shared empty parameter list. (Also: GCC 12 mis-destroys temporaries with non-trivial
  // destructors inside co_await expressions, so never pass `Params{}` inline to a coroutine.)
  [[nodiscard]] static const Params& none();

 private:
  Params& push(Oid type, std::string bytes);
  std::vector<Oid> types_;
  std::vector<std::string> data_;
  std::vector<bool> null_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

template <class T>
constexpr Oid Params::type_oid() {
  if constexpr (std::is_same_v<T, bool>)
    return oid::kBool;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return oid::kInt4;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return oid::kInt8;
  else if constexpr (std::is_same_v<T, double>)
    return oid::kFloat8;
  else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>)
    return oid::kText;
  else if constexpr (std::is_same_v<T, Bytes>)
    return oid::kBytea;
  else if constexpr (std::is_same_v<T, Timestamp>)
    return oid::kTimestamptz;
  else if constexpr (std::is_same_v<T, Json>)
    return oid::kJsonb;
  else if constexpr (std::is_same_v<T, Uuid>)
    return oid::kUuid;
  else
    static_assert(sizeof(T) == 0, "unsupported parameter type");
}

class Rows;

// One row of a result; valid while its Rows lives.
class Row {
 public:
  Row(const Rows& rows, int index) : rows_(&rows), index_(index) {}

  template <class T>
  [[nodiscard]] T get(int column) const;
  template <class T>
  [[nodiscard]] T get(std::string_view column) const {
    return get<T>(column_index(column));
  }
  [[nodiscard]] bool is_null(int column) const;

 private:
  [[nodiscard]] int column_index(std::string_view name) const;
  const Rows* rows_;
  int index_;
};

// The rows and status of one executed statement. Move-only; owns the libpq result.
class Rows {
 public:
  Rows() = default;
  explicit Rows(pg_result* result);
  ~Rows();
  Rows(Rows&&) noexcept;
  Rows& operator=(Rows&&) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;

  [[nodiscard]] int size() const;
  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] int columns() const;
  [[nodiscard]] Row operator[](int index) const { return Row(*this, index); }
  [[nodiscard]] Row front() const { return Row(*this, 0); }
  [[nodiscard]] std::int64_t affected() const;  // rows inserted/updated/deleted
  [[nodiscard]] pg_result* native() const { return result_; }

 private:
  pg_result* result_ = nullptr;
};

// Every row of `rows`, in order, as `decode` makes it of each.
template <class Decode>
[[nodiscard]] auto decode_all(const Rows& rows, Decode decode) {
  std::vector<std::invoke_result_t<Decode&, Row>> out;
  out.reserve(static_cast<std::size_t>(rows.size()));
  for (int i = 0; i < rows.size(); ++i) out.push_back(decode(rows[i]));
  return out;
}

}  // namespace liftoff::db
