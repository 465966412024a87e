#pragma once
// /v1/orgs/*, /v1/invitations/* : organizations, members, invitations, API keys and the audit log.
// HTTP in and out; the rules live in identity::OrgService and audit::.
#include "liftoff/http/router.hpp"

namespace liftoff::db {
class Database;
}
namespace liftoff::identity {
class IdentityService;
class OrgService;
}  // namespace liftoff::identity

namespace liftoff::records {
class RecordService;
}  // namespace liftoff::records

namespace liftoff::api {

class RateLimits;

// The audit log's reads draw from the organization's read rate (RecordService::admit_read).
void add_org_routes(http::Router& router, identity::IdentityService& identity,
                    identity::OrgService& orgs, db::Database& database, RateLimits& limits,
                    records::RecordService& records);

}  // namespace liftoff::api
