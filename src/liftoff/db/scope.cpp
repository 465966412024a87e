#include "liftoff/db/scope.hpp"

#include <stdexcept>

namespace liftoff::db {

std::string_view to_string(Plane plane) {
  switch (plane) {
    case Plane::control:
      return "control";
    case Plane::tenant:
      return "tenant";
    case Plane::any:
      return "any";
  }
  return "unknown";
}

std::string Tenant::describe() const {
  switch (kind_) {
    case Kind::control:
      return "the control plane";
    case Kind::every_org:
      return shard_ == 0 ? "every org" : "every org of shard #" + std::to_string(shard_);
    case Kind::org:
      return "org " + org_->to_string();
  }
  return "unknown";
}

const Uuid& Scope::org() const {
  if (!tenant.org_id()) throw std::logic_error("a scope for " + tenant.describe() + " has no org");
  return *tenant.org_id();
}

Scope Scope::background(Tenant tenant, std::chrono::milliseconds budget) {
  return Scope{tenant, deadline_after(budget), Actor{"system", {}, {}, {}, {}}};
}

}  // namespace liftoff::db
