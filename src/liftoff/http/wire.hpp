#pragma once
// HTTP/1.1 on the wire, apart from connections and their deadlines (server.cpp): request ids, the
// answers to read errors, what every answer gets on its way out (a default Cache-Control,
// compression), and the serialization of a response into one buffer.
#include <optional>
#include <string>
#include <string_view>

#include "liftoff/core/error.hpp"
#include "liftoff/http/types.hpp"

namespace liftoff::http {

// A client's X-Request-Id is kept when it is 1 to 200 characters of [A-Za-z0-9-_.:].
[[nodiscard]] bool valid_request_id(std::string_view id);
// "<16 hex random per thread><8 hex counter>": unique per process run with overwhelming
// probability.
[[nodiscard]] std::string generate_request_id();

// The answer to a failed read of a request (408, 413, 431, 400); nullopt when the client is gone
// (closed between requests, reset, shutdown): then the connection just closes.
[[nodiscard]] std::optional<Error> classify_read_error(const boost::system::error_code& ec);

// Unless the handler chose: a GET answer may be kept by the client but not shared (it depends on
// the Authorization header) and is revalidated before reuse (its ETag makes that a 304); any
// other answer, such as the tokens and keys that sign-up, login and key creation return, is never
// stored.
void set_default_cache_control(const Request& req, Response& res);

// Adds `name` to the answer's Vary (which may already name others).
void add_vary(Response& res, std::string_view name);

// Compresses a body worth it (kMinCompressedBytes, a compressible type) for a client that
// accepts gzip or zstd, and says that the answer varies with Accept-Encoding. Not an answer with
// a strong ETag (a record's version): a strong validator names one exact representation
// (RFC 9110 8.8.1), and clients send it back in If-Match as it is.
void compress_response(const Request& req, Response& res);

// The status line, the fields, Date and X-Request-Id (when not empty), and the body, in `out`
// (cleared first): one send per response, no scatter machinery.
void serialize_response(const Response& res, std::string_view request_id, std::string& out);

}  // namespace liftoff::http
