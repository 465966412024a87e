#include "liftoff/records/json.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "liftoff/core/time.hpp"

namespace liftoff::records {
namespace json = boost::json;

json::object collection_json(const Collection& c) {
  return {{"id", c.id.to_string()},
          {"name", c.name},
          {"fields", c.schema.to_json()},
          {"rewriting", c.schema.rewriting()},
          {"created_at", core::format_rfc3339(c.created_at)},
          {"updated_at", core::format_rfc3339(c.updated_at)}};
}

void append_record_json(std::string& out, const Record& r, const std::vector<std::string>* fields) {
  out += R"({"id":")";
  out += r.id.to_string();
  out += R"(","version":)";
  out += std::to_string(r.version);
  out += R"(,"created_at":")";
  out += core::format_rfc3339(r.created_at);
  out += R"(","updated_at":")";
  out += core::format_rfc3339(r.updated_at);
  out += R"(","data":)";
  if (fields) {
    auto all = json::parse(r.data).as_object();
    json::object some;
    for (const auto& f : *fields) {
      if (auto v = all.if_contains(f)) some[f] = *v;
    }
    out += json::serialize(some);
  } else {
    out += r.data;
  }
  out += '}';
}

std::string record_json(const Record& r) {
  std::string out;
  append_record_json(out, r);
  return out;
}

}  // namespace liftoff::records
