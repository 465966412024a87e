#include "liftoff/db/consistency.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <vector>

namespace liftoff::db {

namespace {
std::optional<std::uint32_t> hex32(std::string_view text) {
  if (text.empty() || text.size() > 8) return std::nullopt;
  std::uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}
}  // namespace

std::optional<Lsn> Lsn::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto high = hex32(text.substr(0, slash));
  auto low = hex32(text.substr(slash + 1));
  if (!high || !low) return std::nullopt;
  return Lsn{(std::uint64_t{*high} << 32) | *low};
}

std::string Lsn::to_string() const {
  return fmt::format("{:X}/{:X}", value >> 32, value & 0xFFFFFFFFu);
}

std::optional<ConsistencyToken> parse_consistency_token(std::string_view text) {
  ConsistencyToken token;
  if (text.find(':') == std::string_view::npos) {
    auto bare = Lsn::parse(text);
    if (!bare) return std::nullopt;
    token.emplace_back("main", *bare);
    return token;
  }
  while (!text.empty()) {
    auto end = text.find(';');
    auto entry = text.substr(0, end);
    auto colon = entry.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::string name(entry.substr(0, colon));
    auto at = Lsn::parse(entry.substr(colon + 1));
    if (!at) return std::nullopt;
    if (std::any_of(token.begin(), token.end(), [&](const auto& e) { return e.first == name; }))
      return std::nullopt;
    token.emplace_back(std::move(name), *at);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
    if (text.empty()) return std::nullopt;  // a trailing ';'
  }
  return token;
}

std::string to_string(const ConsistencyToken& token) {
  if (token.size() == 1 && token.front().first == "main") return token.front().second.to_string();
  std::string text;
  for (const auto& [name, at] : token)
    (text += text.empty() ? "" : ";") += name + ":" + at.to_string();
  return text;
}

void RecentWrites::wrote(std::uint64_t key, Lsn at) {
  auto now = Clock::now();
  auto& shard = shard_of(key);
  std::lock_guard lock(shard.mutex);
  auto [it, added] = shard.entries.try_emplace(key, Entry{at, now});
  if (!added) {
    it->second.at = std::max(it->second.at, at);
    it->second.when = now;
  }
  if (shard.entries.size() > capacity_per_shard_) trim(shard, now);
}

Lsn RecentWrites::last_write(std::uint64_t key) {
  auto& shard = shard_of(key);
  std::lock_guard lock(shard.mutex);
  auto it = shard.entries.find(key);
  if (it == shard.entries.end()) return {};
  if (Clock::now() - it->second.when > keep_) {
    shard.entries.erase(it);
    return {};
  }
  return it->second.at;
}

std::size_t RecentWrites::size() {
  std::size_t total = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    total += shard.entries.size();
  }
  return total;
}

// Drops the expired entries; when none was, the oldest quarter (a trim then pays for many inserts).
void RecentWrites::trim(Shard& shard, Clock::time_point now) {
  std::erase_if(shard.entries, [&](const auto& e) { return now - e.second.when > keep_; });
  if (shard.entries.size() <= capacity_per_shard_) return;
  std::vector<std::pair<Clock::time_point, std::uint64_t>> by_age;
  by_age.reserve(shard.entries.size());
  for (const auto& [key, entry] : shard.entries) by_age.emplace_back(entry.when, key);
  auto cut =
      by_age.begin() + static_cast<std::ptrdiff_t>(std::max<std::size_t>(by_age.size() / 4, 1));
  std::nth_element(by_age.begin(), cut, by_age.end());
  for (auto it = by_age.begin(); it != cut; ++it) shard.entries.erase(it->second);
}

}  // namespace liftoff::db
