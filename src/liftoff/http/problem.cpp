#include "liftoff/http/problem.hpp"

#include <spdlog/spdlog.h>

#include <boost/beast/http/field.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace liftoff::http {

Response problem_response(const Error& error, const RequestIds& ids, unsigned version) {
  const auto& request_id = ids.request_id;
  const auto& meta = info(error.code);
  boost::json::object body;
  body["type"] = std::string(kProblemTypePrefix) + std::string(meta.slug);
  body["title"] = meta.title;
  body["status"] = meta.http_status;
  if (error.code == Errc::internal) {
    // Internal details (SQL, stack traces) stay in the server log, keyed by the request id.
    spdlog::error("request {}: internal error: {}", request_id, error.for_log());
    body["detail"] =
        "internal error; the server log has the details for request " + std::string(request_id);
  } else {
    // The cause (PostgreSQL's message, a host and port) is the server's to know.
    if (!error.cause.empty() && meta.http_status >= 500)
      spdlog::warn("request {}: {}", request_id, error.for_log());
    body["detail"] = error.detail;
  }
  if (!request_id.empty()) body["request_id"] = request_id;
  if (!ids.trace_id.empty()) body["trace_id"] = ids.trace_id;
  if (!error.fields.empty()) {
    boost::json::array errors;
    for (const auto& f : error.fields) {
      errors.push_back(boost::json::object{{"field", f.field}, {"message", f.message}});
    }
    body["errors"] = std::move(errors);
  }
  if (error.limit) {
    body["limit"] = boost::json::object{{"name", error.limit->name},
                                        {"value", error.limit->value},
                                        {"plan", error.limit->plan},
                                        {"lifted_by", error.limit->lifted_by}};
  }
  Response res{static_cast<beast_http::status>(meta.http_status), version};
  res.set(beast_http::field::content_type, "application/problem+json");
  res.body() = boost::json::serialize(body);
  if (error.code == Errc::unavailable || error.code == Errc::retryable ||
      error.code == Errc::too_many_requests) {
    auto seconds =
        error.retry_after ? error.retry_after->count() : (error.code == Errc::retryable ? 0 : 1);
    res.set(beast_http::field::retry_after, std::to_string(seconds));
  }
  res.prepare_payload();
  return res;
}

Response json_response(beast_http::status status, const boost::json::value& body,
                       unsigned version) {
  Response res{status, version};
  res.set(beast_http::field::content_type, "application/json");
  res.body() = boost::json::serialize(body);
  res.prepare_payload();
  return res;
}

Response text_response(beast_http::status status, std::string body, std::string_view content_type,
                       unsigned version) {
  Response res{status, version};
  res.set(beast_http::field::content_type, content_type);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

}  // namespace liftoff::http
