// OrgService: invitations to join an organization.
#include "liftoff/core/time.hpp"
#include "liftoff/db/database.hpp"
#include "liftoff/identity/account_mail.hpp"
#include "liftoff/identity/credentials.hpp"
#include "liftoff/identity/notices.hpp"
#include "liftoff/identity/org_common.hpp"
#include "liftoff/identity/organizations.hpp"

namespace liftoff::identity {
namespace asio = boost::asio;
using namespace org_common;

asio::awaitable<Result<Invitation>> OrgService::invite(const db::Scope& scope,
                                                       const Principal& principal,
                                                       const std::string& email, Role role) {
  const auto& org_id = scope.org();
  auto normalized = normalize_email(email);
  if (!normalized) {
    co_return Error{Errc::validation_failed,
                    "the invitation is invalid",
                    {{"email", "is not a valid email address"}}};
  }
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::invitations_manage);
  if (!locked) co_return locked.error();
  if (!may_grant(locked->role, role)) {
    co_return make_error(Errc::permission_denied,
                         "you cannot invite someone with a role above "
                         "your own");
  }
  auto member = co_await store_.has_member_email(*tx, org_id, *normalized);
  if (!member) co_return member.error();
  if (*member) co_return make_error(Errc::conflict, "that address belongs to a member already");
  auto closed = co_await store_.close_expired_invitations(*tx, org_id, *normalized);
  if (!closed) co_return closed.error();
  // A pending invitation holds a seat: the org's members and invitations fit the plan.
  auto seat = co_await seat_free(*tx, org_id, *locked->plan, locked->limits, true);
  if (!seat) co_return seat.error();

  Invitation invitation{new_id(),
                        org_id,
                        *normalized,
                        role,
                        principal.actor_id(),
                        {},
                        {},
                        new_token(kInvitationTokenPrefix)};
  invitation.expires_at =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()) +
      std::chrono::duration_cast<std::chrono::microseconds>(options_.invitation_ttl);
  auto inserted =
      co_await store_.insert_invitation(*tx, invitation, token_digest(invitation.token));
  if (!inserted) {
    if (inserted.error().code == Errc::conflict)
      co_return make_error(Errc::conflict, "an invitation to that address is pending already");
    co_return inserted.error();
  }
  audit::Change change{"invitation.created", "invitation", invitation.id.to_string(), std::nullopt,
                       object_text({{"email", invitation.email},
                                    {"role", to_string(role)},
                                    {"expires_at", core::format_rfc3339(invitation.expires_at)}})};
  if (mail_) {
    auto queued = co_await mail_->invitation(*tx, org_id, invitation.id);
    if (!queued) co_return queued.error();
  }
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  co_return invitation;
}

asio::awaitable<Result<std::vector<Invitation>>> OrgService::invitations(const db::Scope& scope,
                                                                         const Access& access) {
  co_return co_await store_.pending_invitations(scope.control(), access.org_id);
}

asio::awaitable<Result<void>> OrgService::revoke_invitation(const db::Scope& scope,
                                                            const Principal& principal,
                                                            std::string_view id_text) {
  const auto& org_id = scope.org();
  auto id = db::Uuid::parse(id_text);
  if (!id) co_return make_error(Errc::not_found, "no such pending invitation");
  auto tx = co_await db_.begin(scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto locked = co_await lock(*tx, principal, org_id, Action::invitations_manage);
  if (!locked) co_return locked.error();
  auto revoked = co_await store_.revoke_invitation(*tx, *id, org_id);
  if (!revoked) co_return revoked.error();
  if (!*revoked) co_return make_error(Errc::not_found, "no such pending invitation");
  const auto& [email, role] = **revoked;
  audit::Change change{"invitation.revoked", "invitation", id->to_string(),
                       object_text({{"email", email}, {"role", to_string(role)}}), std::nullopt};
  auto event = co_await audit::append_and_commit(*tx, scope, change);
  if (!event) co_return event.error();
  co_return Result<void>{};
}

asio::awaitable<Result<Org>> OrgService::accept_invitation(const db::Scope& scope,
                                                           const Principal& principal,
                                                           std::string_view token) {
  auto not_found = make_error(Errc::not_found, "no such invitation");
  if (!token_shaped(token, kInvitationTokenPrefix)) co_return not_found;
  auto digest = token_digest(token);
  // The org first, then the invitation: every path locks an org's rows in that order.
  auto found_org = co_await store_.invitation_org(scope, digest);
  if (!found_org) co_return found_org.error();
  if (!*found_org) co_return not_found;
  auto org_id = **found_org;

  auto org_scope = scope.for_tenant(db::Tenant::org(org_id));
  auto tx = co_await db_.begin(org_scope, db::Isolation::read_committed, db::Planes::both);
  if (!tx) co_return tx.error();
  auto org = co_await store_.lock_org(*tx, org_id, principal.user.id, false);
  if (!org) co_return org.error();
  if (!*org || (*org)->org.deleted_at) co_return not_found;  // gone or deleted
  auto invitation = co_await store_.lock_invitation(*tx, digest);
  if (!invitation) co_return invitation.error();
  if (!*invitation) co_return not_found;
  const auto& state = **invitation;
  if (state.accepted) co_return make_error(Errc::conflict, "the invitation was used already");
  if (state.revoked) co_return make_error(Errc::gone, "the invitation was revoked");
  if (state.expired) co_return make_error(Errc::gone, "the invitation has expired");
  if (state.email != principal.user.email) {
    co_return make_error(Errc::permission_denied,
                         "the invitation is for another email address; sign in as that user");
  }
  if ((*org)->actor_role)
    co_return make_error(Errc::conflict, "you are a member of the organization already");
  // The plan may have shrunk since the invitation was made: the members still fit it.
  const auto& plan = *(*org)->plan;
  auto seat = co_await seat_free(*tx, org_id, plan,
                                 plans::effective_limits(plan, (*org)->plan_limits), false);
  if (!seat) co_return seat.error();

  auto member = co_await store_.add_member(*tx, org_id, principal.user.id, state.role);
  if (!member) co_return member.error();
  auto accepted = co_await store_.mark_accepted(*tx, state.id, principal.user.id);
  if (!accepted) co_return accepted.error();
  audit::Change change{
      "member.joined", "user", principal.user.id.to_string(), std::nullopt,
      object_text({{"role", to_string(state.role)}, {"invitation_id", state.id.to_string()}})};
  auto notified = co_await store_.notify(*tx, user_payload(principal.user.id));
  if (!notified) co_return notified.error();
  if (notify_) {
    // The owners and admins of the org (but the one joining, if invited as one).
    const std::vector<db::Uuid> nobody;
    const std::vector<Role> managers{Role::owner, Role::admin};
    auto admins = co_await store_.members_among(*tx, org_id, nobody, managers,
                                                static_cast<std::int64_t>(kMaxRecipients));
    if (!admins) co_return admins.error();
    std::erase(*admins, principal.user.id);
    const auto notice = joined_notice((*org)->org, principal, state.role);
    auto told = co_await tell(*tx, org_id, notice, *admins);
    if (!told) co_return told.error();
  }
  auto event = co_await audit::append_and_commit(*tx, org_scope, change);
  if (!event) co_return event.error();
  evict_user(principal.user.id);
  Org joined = std::move((*org)->org);
  joined.deleted_at.reset();
  joined.purge_after.reset();
  joined.role = state.role;
  co_return joined;
}

}  // namespace liftoff::identity
