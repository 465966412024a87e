#pragma once
// Where webhooks may be delivered. An org's admin chooses the URL, so a delivery must not become a
// way into the network Liftoff runs in (server-side request forgery). The sender (not built yet)
// is to resolve the host, check every address it resolves to with classify(), and connect only to
// a checked address, never resolving again; unless the operator allows private networks, only
// public unicast addresses pass.
#include <boost/asio/ip/address.hpp>
#include <string_view>

namespace liftoff::webhooks {

// Why an address is refused; `none` when it is public.
enum class Refusal {
  none,
  unspecified,  // 0.0.0.0, ::
  loopback,     // 127/8, ::1
  private_use,  // 10/8, 172.16/12, 192.168/16, fc00::/7
  link_local,   // 169.254/16 (cloud metadata services), fe80::/10
  shared,       // 100.64/10 (carrier-grade NAT)
  multicast,    // 224/4, ff00::/8
  reserved,     // 0/8, 192.0.0/24, 198.18/15, 240/4, broadcast, documentation ranges; 6to4 and
                // Teredo (which may embed any IPv4 address); outside 2000::/3
};

[[nodiscard]] Refusal classify(const boost::asio::ip::address& address);

// "a loopback address" ...: for the message of a refused delivery.
[[nodiscard]] std::string_view describe(Refusal refusal);

}  // namespace liftoff::webhooks
