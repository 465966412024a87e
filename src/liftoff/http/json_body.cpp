#include "liftoff/http/json_body.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json/error.hpp>
#include <boost/json/stream_parser.hpp>

namespace liftoff::http {
namespace {

bool is_json_media_type(std::string_view content_type) {
  auto semicolon = content_type.find(';');
  auto type = content_type.substr(0, semicolon);
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  auto iequals = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(x) == std::tolower(y);
           });
  };
  if (iequals(type, "application/json")) return true;
  // application/<anything>+json, e.g. application/merge-patch+json
  return type.size() > 17 && iequals(type.substr(0, 12), "application/") &&
         iequals(type.substr(type.size() - 5), "+json");
}

// Longest string (key or value) anywhere in the document.
bool strings_within(const boost::json::value& v, std::size_t max) {
  switch (v.kind()) {
    case boost::json::kind::string:
      return v.get_string().size() <= max;
    case boost::json::kind::array:
      for (const auto& e : v.get_array()) {
        if (!strings_within(e, max)) return false;
      }
      return true;
    case boost::json::kind::object:
      for (const auto& [k, e] : v.get_object()) {
        if (k.size() > max || !strings_within(e, max)) return false;
      }
      return true;
    default:
      return true;
  }
}

}  // namespace

Result<boost::json::value> parse_json_body(const Request& request, const JsonLimits& limits) {
  auto content_type = request[beast_http::field::content_type];
  if (!is_json_media_type(content_type)) {
    return make_error(
        Errc::unsupported_media_type,
        "expected Content-Type: application/json, got '" + std::string(content_type) + "'");
  }
  const auto& body = request.body();
  if (body.empty())
    return make_error(Errc::bad_request, "the request body is empty; expected a JSON document");

  boost::json::parse_options options;
  options.max_depth = limits.max_depth;
  boost::json::stream_parser parser(boost::json::storage_ptr(), options);
  boost::system::error_code ec;
  auto consumed = parser.write_some(body.data(), body.size(), ec);
  if (!ec && consumed < body.size()) ec = boost::json::error::extra_data;
  if (!ec) parser.finish(ec);
  if (ec) {
    std::string what = ec == boost::json::error::too_deep
                           ? "nested deeper than " + std::to_string(limits.max_depth) + " levels"
                       : ec == boost::json::error::syntax || ec == boost::json::error::extra_data
                           ? "invalid JSON"
                           : ec.message();
    return make_error(Errc::bad_request, what + " at byte " + std::to_string(consumed));
  }
  auto value = parser.release();
  if (!strings_within(value, limits.max_string_length)) {
    return make_error(Errc::bad_request, "a string in the body is longer than " +
                                             std::to_string(limits.max_string_length) + " bytes");
  }
  if (limits.require_object && !value.is_object()) {
    return Error{
        Errc::validation_failed, "the body must be a JSON object", {{"", "expected an object"}}};
  }
  return value;
}

}  // namespace liftoff::http
