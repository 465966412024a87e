#include "liftoff/core/tenant_tally.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>

#include "liftoff/core/metrics.hpp"
#include "liftoff/core/worker.hpp"

namespace liftoff::core {

TenantTally::TenantTally(std::size_t tracked, std::size_t shown, std::size_t workers)
    : tracked_(std::max<std::size_t>(tracked, 1)),
      shown_(shown),
      workers_(std::max<std::size_t>(workers, 1)) {}

void TenantTally::place(Worker& worker, const std::string& org, Entry& entry,
                        std::list<Bucket>::iterator from) {
  const auto requests = entry.counts.requests;
  while (from != worker.buckets.end() && from->requests < requests) ++from;
  if (from == worker.buckets.end() || from->requests != requests)
    from = worker.buckets.insert(from, Bucket{requests, {}});
  entry.bucket = from;
  entry.seat = from->orgs.insert(from->orgs.end(), &org);
}

void TenantTally::record(std::string_view org, bool server_error, double request_seconds,
                         double database_seconds) {
  auto& worker = workers_[std::min(this_worker(), workers_.size() - 1)];
  std::lock_guard lock(worker.mutex);
  auto it = worker.orgs.find(org);
  if (it != worker.orgs.end()) {
    // One more request: to the next bucket (made when the next one counts more), in place.
    auto& entry = it->second;
    auto from = entry.bucket;
    auto to = std::next(from);
    ++entry.counts.requests;
    if (to == worker.buckets.end() || to->requests != entry.counts.requests)
      to = worker.buckets.insert(to, Bucket{entry.counts.requests, {}});
    to->orgs.splice(to->orgs.end(), from->orgs, entry.seat);
    entry.bucket = to;
    if (from->orgs.empty()) worker.buckets.erase(from);
  } else {
    Entry fresh;
    if (worker.orgs.size() >= tracked_) {
      // Space-saving: the org with the fewest requests makes room, and the newcomer starts from
      // its count (an upper bound of the newcomer's own).
      auto least = worker.buckets.begin();
      const auto* dropped = least->orgs.front();
      fresh.counts.requests = least->requests;
      least->orgs.pop_front();
      if (least->orgs.empty()) worker.buckets.erase(least);
      worker.orgs.erase(worker.orgs.find(*dropped));
    }
    ++fresh.counts.requests;
    it = worker.orgs.emplace(std::string(org), fresh).first;
    place(worker, it->first, it->second, worker.buckets.begin());
  }
  auto& counts = it->second.counts;
  if (server_error) ++counts.server_errors;
  counts.request_seconds += request_seconds;
  counts.database_seconds += database_seconds;
}

std::vector<std::pair<std::string, TenantTally::Counts>> TenantTally::shown() const {
  std::map<std::string, Counts> total;
  for (const auto& worker : workers_) {
    std::lock_guard lock(worker.mutex);
    for (const auto& [org, entry] : worker.orgs) {
      const auto& counts = entry.counts;
      auto& sum = total[org];
      sum.requests += counts.requests;
      sum.server_errors += counts.server_errors;
      sum.request_seconds += counts.request_seconds;
      sum.database_seconds += counts.database_seconds;
    }
  }
  std::vector<const std::pair<const std::string, Counts>*> all;
  all.reserve(total.size());
  for (const auto& entry : total) all.push_back(&entry);
  std::set<std::string> picked;
  auto top_by = [&](auto key) {
    auto n = std::min(shown_, all.size());
    std::partial_sort(
        all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
        [&](const auto* a, const auto* b) { return key(a->second) > key(b->second); });
    for (std::size_t i = 0; i < n; ++i)
      if (key(all[i]->second) > 0) picked.insert(all[i]->first);
  };
  top_by([](const Counts& c) { return static_cast<double>(c.requests); });
  top_by([](const Counts& c) { return static_cast<double>(c.server_errors); });
  top_by([](const Counts& c) { return c.database_seconds; });
  std::vector<std::pair<std::string, Counts>> out;
  out.reserve(picked.size());
  for (const auto& org : picked) out.emplace_back(org, total.at(org));
  return out;
}

void TenantTally::render(std::string& out) const {
  auto orgs = shown();
  struct Family {
    const char* name;
    const char* help;
    std::string (*value)(const Counts&);
  };
  static constexpr std::array<Family, 4> kFamilies{{
      {"tenant_requests_total",
       "Requests of the organizations with the most requests, server errors or database time "
       "(an upper bound for one tracked after another was dropped)",
       [](const Counts& c) { return std::to_string(c.requests); }},
      {"tenant_server_errors_total", "Their requests answered with a server error (5xx)",
       [](const Counts& c) { return std::to_string(c.server_errors); }},
      {"tenant_request_seconds_total", "Their requests' time, from header to answer",
       [](const Counts& c) { return fmt::format("{}", c.request_seconds); }},
      {"tenant_database_seconds_total", "Their requests' statements' time",
       [](const Counts& c) { return fmt::format("{}", c.database_seconds); }},
  }};
  auto sink = std::back_inserter(out);
  for (const auto& family : kFamilies) {
    fmt::format_to(sink, "# HELP {} {}\n# TYPE {} counter\n", family.name, family.help,
                   family.name);
    for (const auto& [org, counts] : orgs)
      fmt::format_to(sink, "{}{{org=\"{}\"}} {}\n", family.name, label_value(org),
                     family.value(counts));
  }
}

}  // namespace liftoff::core
