#pragma once
// What the records and events e2e tests share: a tenant (an owner and an org) on a server, the
// tickets collection, and small request helpers.
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>

#include "e2e/e2e.hpp"

namespace liftoff::testing {
namespace json = boost::json;

inline std::string body_of(const json::value& v) {
  return json::serialize(v);
}

// Percent-encodes a query parameter value.
inline std::string encode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

struct Tenant {
  unsigned short port = 0;  // of the server it was made on
  TestUser owner;
  std::string org;
  std::string base;  // /v1/orgs/{org}/collections
};

inline Tenant new_tenant(unsigned short port, const std::string& tag) {
  Tenant t{port, sign_up(port, tag), "", ""};
  auto r = send_json(port, "POST", "/v1/orgs", t.owner.token, body_of(json::object{{"name", tag}}));
  EXPECT_EQ(status(r), 201) << (r ? r->body : "no answer");
  if (status(r) != 201) return t;  // the test fails; its requests then get 404s, not a crash
  t.org = std::string(json_of(*r).at("id").as_string());
  t.base = "/v1/orgs/" + t.org + "/collections";
  return t;
}

// Reads the first page of the org's audit log, which seals every event committed before it: a test
// reading audit_events directly afterwards sees all of the org's changes so far.
inline void settle_audit(const Tenant& t) {
  auto r = send_json(t.port, "GET", "/v1/orgs/" + t.org + "/audit?limit=1", t.owner.token);
  EXPECT_EQ(status(r), 200) << (r ? r->body : "no answer");
}

// Invites `user` into the tenant's org with `role`, and accepts.
inline void add_member(const Tenant& t, const TestUser& user, const std::string& role) {
  auto inv = send_json(t.port, "POST", "/v1/orgs/" + t.org + "/invitations", t.owner.token,
                       body_of(json::object{{"email", user.email}, {"role", role}}));
  ASSERT_EQ(status(inv), 201);
  std::string token(json_of(*inv).at("token").as_string());
  ASSERT_EQ(status(accept_invitation(t.port, token, user.token)), 200);
}

inline const char* kTicketFields = R"([
  {"name": "title", "type": "text", "required": true, "max_length": 200},
  {"name": "status", "type": "enum", "values": ["open", "closed"], "required": true,
   "indexed": true},
  {"name": "priority", "type": "integer", "required": true, "indexed": true},
  {"name": "code", "type": "text", "unique": true},
  {"name": "due", "type": "datetime"},
  {"name": "urgent", "type": "boolean", "default": false},
  {"name": "tags", "type": "list_of_text"},
  {"name": "meta", "type": "json"}
])";

inline void create_tickets(const Tenant& t) {
  auto r = send_json(t.port, "POST", t.base, t.owner.token,
                     R"({"name":"tickets","fields":)" + std::string(kTicketFields) + "}");
  ASSERT_EQ(status(r), 201) << (r ? r->body : "no answer");
}

inline std::optional<HttpResponse> create(const Tenant& t, const json::object& data,
                                          const std::string& extra_headers = "") {
  std::string headers = "Content-Type: application/json\r\nAuthorization: Bearer " + t.owner.token +
                        "\r\n" + extra_headers;
  return http_request(t.port, "POST", t.base + "/tickets/records", headers, body_of(data));
}

}  // namespace liftoff::testing
