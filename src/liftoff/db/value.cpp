#include "liftoff/db/value.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <bit>
#include <charconv>
#include <cstring>
#include <utility>

namespace liftoff::db {
namespace {

// PostgreSQL's epoch (2000-01-01) in microseconds since the Unix epoch.
constexpr std::int64_t kPgEpochMicros = 946'684'800LL * 1'000'000LL;

template <class T>
std::string big_endian(T value) {
  static_assert(std::is_integral_v<T>);
  using U = std::make_unsigned_t<T>;
  auto u = static_cast<U>(value);
  std::string out(sizeof(T), '\0');
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out[sizeof(T) - 1 - i] = static_cast<char>(u & 0xFF);
    u = static_cast<U>(u >> 8);
  }
  return out;
}

template <class T>
T read_big_endian(const char* p) {
  using U = std::make_unsigned_t<T>;
  U u = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    u = static_cast<U>((u << 8) | static_cast<unsigned char>(p[i]));
  }
  return static_cast<T>(u);
}

struct Cell {
  const char* data;
  int length;
  Oid type;
};

}  // namespace

std::string uuid_list(std::span<const Uuid> ids) {
  std::string list;
  list.reserve(ids.size() * 37);
  for (const auto& id : ids) {
    if (!list.empty()) list += ',';
    list += id.to_string();
  }
  return list;
}

std::string Uuid::to_string() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t pos = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++pos;  // keeps the '-'
    out[pos++] = kHex[bytes[i] >> 4];
    out[pos++] = kHex[bytes[i] & 0x0F];
  }
  return out;
}

std::optional<Uuid> Uuid::parse(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  Uuid u;
  std::size_t j = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    unsigned byte = 0;
    auto [p, ec] = std::from_chars(text.data() + i, text.data() + i + 2, byte, 16);
    if (ec != std::errc{} || p != text.data() + i + 2) return std::nullopt;
    u.bytes[j++] = static_cast<std::uint8_t>(byte);
    i += 2;
  }
  return u;
}

Params& Params::push(Oid type, std::string bytes) {
  types_.push_back(type);
  lengths_.push_back(static_cast<int>(bytes.size()));
  formats_.push_back(1);
  null_.push_back(false);
  data_.push_back(std::move(bytes));
  return *this;
}

Params& Params::add(bool v) {
  return push(oid::kBool, std::string(1, v ? '\1' : '\0'));
}
Params& Params::add(std::int32_t v) {
  return push(oid::kInt4, big_endian(v));
}
Params& Params::add(std::int64_t v) {
  return push(oid::kInt8, big_endian(v));
}
Params& Params::add(double v) {
  return push(oid::kFloat8, big_endian(std::bit_cast<std::int64_t>(v)));
}
Params& Params::add(std::string_view v) {
  return push(oid::kText, std::string(v));
}
Params& Params::add(const Bytes& v) {
  return push(oid::kBytea, v.data);
}
Params& Params::add(Timestamp v) {
  return push(oid::kTimestamptz,
              big_endian<std::int64_t>(v.time_since_epoch().count() - kPgEpochMicros));
}
Params& Params::add(const Json& v) {
  return push(oid::kJsonb, "\1" + v.text);
}
Params& Params::add(const Uuid& v) {
  return push(oid::kUuid,
              std::string(reinterpret_cast<const char*>(v.bytes.data()), v.bytes.size()));
}
Params& Params::add_null(Oid type) {
  push(type, {});
  null_.back() = true;
  lengths_.back() = 0;
  return *this;
}

const Params& Params::none() {
  static const Params kNone;
  return kNone;
}

std::vector<const char*> Params::values() const {
  std::vector<const char*> out(data_.size());
  for (std::size_t i = 0; i < data_.size(); ++i) out[i] = null_[i] ? nullptr : data_[i].data();
  return out;
}

Rows::Rows(pg_result* result) : result_(result) {}
Rows::~Rows() {
  if (result_) PQclear(result_);
}
Rows::Rows(Rows&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    if (result_) PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}
int Rows::size() const {
  return result_ ? PQntuples(result_) : 0;
}
int Rows::columns() const {
  return result_ ? PQnfields(result_) : 0;
}
std::int64_t Rows::affected() const {
  if (!result_) return 0;
  const char* text = PQcmdTuples(result_);
  std::int64_t n = 0;
  std::from_chars(text, text + std::strlen(text), n);
  return n;
}

bool Row::is_null(int column) const {
  return PQgetisnull(rows_->native(), index_, column) != 0;
}

int Row::column_index(std::string_view name) const {
  int n = PQnfields(rows_->native());
  for (int i = 0; i < n; ++i) {
    if (name == PQfname(rows_->native(), i)) return i;
  }
  throw DecodeError(fmt::format("no column named {}", name));
}

namespace {

Cell cell(pg_result* r, int row, int column) {
  if (row < 0 || row >= PQntuples(r) || column < 0 || column >= PQnfields(r)) {
    throw DecodeError(fmt::format("cell ({}, {}) out of range", row, column));
  }
  if (PQfformat(r, column) != 1) throw DecodeError("result is not in binary format");
  return {PQgetvalue(r, row, column), PQgetlength(r, row, column), PQftype(r, column)};
}

[[noreturn]] void type_mismatch(const char* wanted, const Cell& c) {
  throw DecodeError(fmt::format("cannot decode column of type oid {} as {}", c.type, wanted));
}

void expect_length(const Cell& c, int length) {
  if (c.length != length)
    throw DecodeError(fmt::format("unexpected binary length {} for oid {}", c.length, c.type));
}

template <class T>
T decode(const Cell& c);

template <>
bool decode<bool>(const Cell& c) {
  if (c.type != oid::kBool) type_mismatch("bool", c);
  expect_length(c, 1);
  return c.data[0] != 0;
}

// Integers widen: an int8 reads int2/int4/int8/oid columns, an int4 reads int2/int4; never
// narrowing.
template <class T>
T decode_integer(const Cell& c, const char* wanted) {
  switch (c.type) {
    case oid::kInt8:
      if constexpr (sizeof(T) >= 8) {
        expect_length(c, 8);
        return read_big_endian<std::int64_t>(c.data);
      }
      break;
    case oid::kOid:
      if constexpr (sizeof(T) >= 8) {
        expect_length(c, 4);
        return read_big_endian<std::uint32_t>(c.data);
      }
      break;
    case oid::kInt4:
      expect_length(c, 4);
      return read_big_endian<std::int32_t>(c.data);
    case oid::kInt2:
      expect_length(c, 2);
      return read_big_endian<std::int16_t>(c.data);
    default:
      break;
  }
  type_mismatch(wanted, c);
}

template <>
std::int64_t decode<std::int64_t>(const Cell& c) {
  return decode_integer<std::int64_t>(c, "int64");
}

template <>
std::int32_t decode<std::int32_t>(const Cell& c) {
  return decode_integer<std::int32_t>(c, "int32");
}

template <>
double decode<double>(const Cell& c) {
  switch (c.type) {
    case oid::kFloat8:
      expect_length(c, 8);
      return std::bit_cast<double>(read_big_endian<std::int64_t>(c.data));
    case oid::kFloat4:
      expect_length(c, 4);
      return std::bit_cast<float>(read_big_endian<std::int32_t>(c.data));
    default:
      type_mismatch("double", c);
  }
}

template <>
std::string decode<std::string>(const Cell& c) {
  switch (c.type) {
    case oid::kText:
    case oid::kVarchar:
    case oid::kName:
    case oid::kBpchar:
    case oid::kJson:
      return std::string(c.data, static_cast<std::size_t>(c.length));
    default:
      type_mismatch("text", c);
  }
}

template <>
Bytes decode<Bytes>(const Cell& c) {
  if (c.type != oid::kBytea) type_mismatch("bytea", c);
  return Bytes{std::string(c.data, static_cast<std::size_t>(c.length))};
}

template <>
Timestamp decode<Timestamp>(const Cell& c) {
  if (c.type != oid::kTimestamptz && c.type != oid::kTimestamp) type_mismatch("timestamptz", c);
  expect_length(c, 8);
  return Timestamp(
      std::chrono::microseconds(read_big_endian<std::int64_t>(c.data) + kPgEpochMicros));
}

template <>
Json decode<Json>(const Cell& c) {
  if (c.type == oid::kJson) return Json{std::string(c.data, static_cast<std::size_t>(c.length))};
  if (c.type != oid::kJsonb) type_mismatch("jsonb", c);
  if (c.length < 1 || c.data[0] != 1) throw DecodeError("unknown jsonb binary version");
  return Json{std::string(c.data + 1, static_cast<std::size_t>(c.length - 1))};
}

template <>
Uuid decode<Uuid>(const Cell& c) {
  if (c.type != oid::kUuid) type_mismatch("uuid", c);
  expect_length(c, 16);
  Uuid u;
  std::memcpy(u.bytes.data(), c.data, 16);
  return u;
}

template <class T>
struct Decoder {
  static T get(pg_result* r, int row, int column) {
    if (PQgetisnull(r, row, column)) {
      throw DecodeError(fmt::format("column {} ({}) is NULL; read it as std::optional", column,
                                    PQfname(r, column)));
    }
    return decode<T>(cell(r, row, column));
  }
};

template <class T>
struct Decoder<std::optional<T>> {
  static std::optional<T> get(pg_result* r, int row, int column) {
    cell(r, row, column);  // range check
    if (PQgetisnull(r, row, column)) return std::nullopt;
    return decode<T>(cell(r, row, column));
  }
};

}  // namespace

template <class T>
T Row::get(int column) const {
  return Decoder<T>::get(rows_->native(), index_, column);
}

// NOLINTBEGIN(bugprone-macro-parentheses): T is a type
#define LIFTOFF_DB_DECODABLE(T)      \
  template T Row::get<T>(int) const; \
  template std::optional<T> Row::get<std::optional<T>>(int) const;
LIFTOFF_DB_DECODABLE(bool)
LIFTOFF_DB_DECODABLE(std::int32_t)
LIFTOFF_DB_DECODABLE(std::int64_t)
LIFTOFF_DB_DECODABLE(double)
LIFTOFF_DB_DECODABLE(std::string)
LIFTOFF_DB_DECODABLE(Bytes)
LIFTOFF_DB_DECODABLE(Timestamp)
LIFTOFF_DB_DECODABLE(Json)
LIFTOFF_DB_DECODABLE(Uuid)
#undef LIFTOFF_DB_DECODABLE
// NOLINTEND(bugprone-macro-parentheses)

}  // namespace liftoff::db
