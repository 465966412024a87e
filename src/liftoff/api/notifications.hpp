#pragma once
// In-app notifications (notify/notifications.hpp): a signed-in user's feed under /v1/me/
// notifications (list, unread count, mark read, and a Server-Sent Events stream that pushes each
// new notification and every change of the unread count), and POST /v1/orgs/{org}/notifications,
// through which an org's app notifies its members.
#include <chrono>
#include <cstddef>

#include "liftoff/http/router.hpp"

namespace liftoff::identity {
class IdentityService;
class OrgService;
}  // namespace liftoff::identity
namespace liftoff::notify {
class Hub;
class Notifications;
}  // namespace liftoff::notify
namespace liftoff::db {
class Database;
}

namespace liftoff::api {

class RateLimits;

struct NotificationStreamOptions {
  std::chrono::milliseconds heartbeat{15'000};
  // A stream resumed further back than this many notifications starts over with a reset event.
  std::size_t max_replay = 1'000;
};

void add_notification_routes(http::Router& router, identity::IdentityService& identity,
                             identity::OrgService& orgs, notify::Notifications& notifications,
                             notify::Hub& hub, NotificationStreamOptions options,
                             db::Database& database, RateLimits& limits);

}  // namespace liftoff::api
