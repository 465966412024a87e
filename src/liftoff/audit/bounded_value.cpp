#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "liftoff/audit/audit.hpp"
#include "liftoff/core/text.hpp"

namespace liftoff::audit {
namespace json = boost::json;

namespace {
// Values no larger than this are never cut on their own: a marker costs about 100 bytes.
constexpr std::size_t kMinCut = 256;

// The part's size and SHA-256 (a chain link with no predecessor is the SHA-256 of its text).
json::value marker(const json::value& cut) {
  auto text = json::serialize(cut);
  return json::object{
      {"$cut", json::object{{"bytes", text.size()}, {"sha256", core::hex(chain_hash({}, text))}}}};
}

std::size_t string_size(json::string_view s) {
  return json::serialize(s).size();
}

// A value that may be cut: larger than kMinCut, with no part larger than that (so candidates never
// nest, and cutting one never changes another's size).
struct Candidate {
  json::value* value;
  std::size_t size;
};

// The serialized size of `v` (as json::serialize writes it), collecting the candidates below it.
std::size_t measure(json::value& v, std::vector<Candidate>& candidates, bool is_root) {
  std::size_t size = 0;
  bool has_large_part = false;
  auto part = [&](json::value& child) {
    auto n = measure(child, candidates, false);
    has_large_part = has_large_part || n > kMinCut;
    return n;
  };
  if (v.is_object()) {
    auto& object = v.get_object();
    size = 2 + (object.empty() ? 0 : object.size() - 1);  // braces, commas
    for (auto& member : object) size += string_size(member.key()) + 1 + part(member.value());
  } else if (v.is_array()) {
    auto& array = v.get_array();
    size = 2 + (array.empty() ? 0 : array.size() - 1);
    for (auto& element : array) size += part(element);
  } else {
    size = json::serialize(v).size();
  }
  if (!is_root && size > kMinCut && !has_large_part) candidates.push_back({&v, size});
  return size;
}
}  // namespace

std::string bounded_value(std::string json_text, std::size_t limit) {
  if (json_text.size() <= limit) return json_text;
  boost::system::error_code ec;
  auto root = json::parse(json_text, ec);
  if (ec) return json::serialize(marker(json::value(json::string(json_text))));
  json_text.clear();
  json_text.shrink_to_fit();
  // Rounds: cut the largest candidates until the value fits. A round that cut every candidate and
  // still does not fit makes their parents candidates in the next (each round goes one level up).
  for (;;) {
    std::vector<Candidate> candidates;
    auto size = measure(root, candidates, true);
    if (size <= limit) break;
    if (candidates.empty()) {
      // Every part left is small: an object or array keeps its members (a record its id, version
      // and times); a scalar is cut whole.
      if (!root.is_object() && !root.is_array()) root = marker(root);
      break;
    }
    std::sort(candidates.begin(), candidates.end(),
              [](const Candidate& a, const Candidate& b) { return a.size > b.size; });
    for (const auto& c : candidates) {
      auto replacement = marker(*c.value);
      size = size - c.size + json::serialize(replacement).size();
      *c.value = std::move(replacement);
      if (size <= limit) break;
    }
  }
  return json::serialize(root);
}

}  // namespace liftoff::audit
