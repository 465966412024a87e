#pragma once
// What follows the session channel's news of organizations (identity/revocation_listener.hpp): an
// org renamed, deleted, restored or moved to another shard NOTIFYs "org:<id>" in its transaction,
// and every process's followers forget what they hold of it. Notifications sent while the channel
// is not heard are lost, so a follower forgets everything when it is heard again, and must not
// trust what it holds while it is not.
#include "liftoff/db/value.hpp"

namespace liftoff::db {

class OrgChanges {
 public:
  virtual ~OrgChanges() = default;
  // The org changed: what is held of it is stale.
  virtual void stale(const Uuid& org) = 0;
  // Anything may have changed (the channel was not heard for a while).
  virtual void stale_all() = 0;
  // Whether the channel is heard now: called with true after stale_all() on each (re)connect, and
  // with false when the connection is lost.
  virtual void listening(bool heard) { (void)heard; }

 protected:
  OrgChanges() = default;
  OrgChanges(const OrgChanges&) = default;
  OrgChanges& operator=(const OrgChanges&) = default;
};

}  // namespace liftoff::db
