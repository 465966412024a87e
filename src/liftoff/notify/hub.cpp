#include "liftoff/notify/hub.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>

#include "liftoff/db/listener.hpp"
#include "liftoff/notify/notifications.hpp"

namespace liftoff::notify {
namespace asio = boost::asio;

void Bell::ring() {
  {
    std::lock_guard lock(mutex_);
    if (posted_) return;
    posted_ = true;
  }
  asio::post(executor_, [self = shared_from_this()] {
    {
      std::lock_guard lock(self->mutex_);
      self->posted_ = false;
    }
    if (self->on_ring_) self->on_ring_();
  });
}

Result<void> Hub::subscribe(const std::shared_ptr<Bell>& bell) {
  std::lock_guard lock(mutex_);
  if (streams_ >= options_.max_streams)
    return make_error(Errc::unavailable, "too many open notification streams");
  auto key = bell->user().to_string();
  if (auto it = users_.find(key);
      it != users_.end() && it->second.size() >= options_.max_per_user) {
    return make_error(Errc::too_many_requests,
                      "too many open notification streams for this user "
                      "(notifications_max_streams_per_user); close one first");
  }
  if (!bell->client().empty()) {
    auto& open = clients_[bell->client()];
    if (open >= options_.max_per_client) {
      return make_error(Errc::too_many_requests,
                        "too many open notification streams from your address "
                        "(events_max_streams_per_client); close one first");
    }
    ++open;
  }
  ++streams_;
  users_[key].push_back(bell);
  return {};
}

void Hub::unsubscribe(const std::shared_ptr<Bell>& bell) {
  std::lock_guard lock(mutex_);
  auto it = users_.find(bell->user().to_string());
  if (it == users_.end()) return;
  auto& list = it->second;
  auto found = std::find(list.begin(), list.end(), bell);
  if (found == list.end()) return;
  list.erase(found);
  --streams_;
  if (auto client = clients_.find(bell->client()); client != clients_.end()) {
    if (--client->second == 0) clients_.erase(client);
  }
  if (list.empty()) users_.erase(it);
}

void Hub::changed(std::string_view user_text) {
  std::lock_guard lock(mutex_);
  auto it = users_.find(std::string(user_text));
  if (it == users_.end()) return;
  for (const auto& bell : it->second) bell->ring();
}

void Hub::ring_all() {
  std::lock_guard lock(mutex_);
  for (const auto& [user, bells] : users_) {
    for (const auto& bell : bells) bell->ring();
  }
}

asio::awaitable<void> Hub::run() {
  co_await db::listen(listen_, std::string(kNotificationsChannel),
                      {[this] {
                         std::lock_guard lock(mutex_);
                         return stopping_;
                       },
                       // What was delivered while nobody listened: every stream reads again.
                       [this] { ring_all(); },
                       [this](const std::vector<db::Notification>& batch) {
                         for (const auto& n : batch) changed(n.payload);
                       },
                       [] {}});
}

void Hub::stop() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
}

}  // namespace liftoff::notify
