#pragma once
// What the files of OrgService (organizations, members, invitations, API keys) share: new ids,
// the JSON text of audit values, and the session caches' notification payloads.
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <string>

#include "liftoff/core/id.hpp"
#include "liftoff/db/value.hpp"
#include "liftoff/identity/revocation_listener.hpp"
#include "liftoff/identity/roles.hpp"

namespace liftoff::identity::org_common {

inline db::Uuid new_id() {
  return db::Uuid{core::new_uuid_v7()};
}

inline std::string object_text(const boost::json::object& object) {
  return boost::json::serialize(object);
}

inline std::string role_json(Role role) {  // {"role": "..."}
  return object_text({{"role", to_string(role)}});
}

inline std::string user_payload(const db::Uuid& id) {
  return std::string(kUserPayloadPrefix) + id.to_string();
}

inline std::string org_payload(const db::Uuid& id) {
  return std::string(kOrgPayloadPrefix) + id.to_string();
}

}  // namespace liftoff::identity::org_common
