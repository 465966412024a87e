#include "liftoff/webhooks/address.hpp"

#include <array>
#include <cstdint>

namespace liftoff::webhooks {
namespace ip = boost::asio::ip;

namespace {

struct Range4 {
  std::uint32_t base;
  int prefix;
  Refusal refusal;
};

constexpr std::uint32_t v4(int a, int b, int c, int d) {
  return (static_cast<std::uint32_t>(a) << 24U) | (static_cast<std::uint32_t>(b) << 16U) |
         (static_cast<std::uint32_t>(c) << 8U) | static_cast<std::uint32_t>(d);
}

// IANA's IPv4 special-purpose registry, what is not globally reachable.
constexpr std::array<Range4, 15> kRanges4{{
    {v4(0, 0, 0, 0), 32, Refusal::unspecified},
    {v4(0, 0, 0, 0), 8, Refusal::reserved},
    {v4(10, 0, 0, 0), 8, Refusal::private_use},
    {v4(100, 64, 0, 0), 10, Refusal::shared},
    {v4(127, 0, 0, 0), 8, Refusal::loopback},
    {v4(169, 254, 0, 0), 16, Refusal::link_local},
    {v4(172, 16, 0, 0), 12, Refusal::private_use},
    {v4(192, 0, 0, 0), 24, Refusal::reserved},
    {v4(192, 0, 2, 0), 24, Refusal::reserved},
    {v4(192, 168, 0, 0), 16, Refusal::private_use},
    {v4(198, 18, 0, 0), 15, Refusal::reserved},
    {v4(198, 51, 100, 0), 24, Refusal::reserved},
    {v4(203, 0, 113, 0), 24, Refusal::reserved},
    {v4(224, 0, 0, 0), 4, Refusal::multicast},
    {v4(240, 0, 0, 0), 4, Refusal::reserved},  // 255.255.255.255 included
}};

Refusal classify4(const ip::address_v4& address) {
  auto value = address.to_uint();
  for (const auto& range : kRanges4) {
    auto mask = ~std::uint32_t{0} << static_cast<unsigned>(32 - range.prefix);  // prefix 4-32
    if ((value & mask) == range.base) return range.refusal;
  }
  return Refusal::none;
}

Refusal classify6(const ip::address_v6& address) {
  if (address.is_unspecified()) return Refusal::unspecified;
  if (address.is_loopback()) return Refusal::loopback;
  if (address.is_v4_mapped()) return classify4(ip::make_address_v4(ip::v4_mapped, address));
  auto bytes = address.to_bytes();
  // The IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) forms reach IPv4 addresses too.
  bool compatible = true;
  for (int i = 0; i < 12; ++i) compatible = compatible && bytes[i] == 0;
  bool nat64 = bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xff && bytes[3] == 0x9b;
  for (int i = 4; nat64 && i < 12; ++i) nat64 = bytes[i] == 0;
  if (compatible || nat64) {
    return classify4(
        ip::address_v4(ip::address_v4::bytes_type{bytes[12], bytes[13], bytes[14], bytes[15]}));
  }
  if (bytes[0] == 0xff) return Refusal::multicast;
  if ((bytes[0] & 0xfeU) == 0xfc) return Refusal::private_use;                      // fc00::/7
  if (bytes[0] == 0xfe && (bytes[1] & 0xc0U) == 0x80) return Refusal::link_local;   // fe80::/10
  if (bytes[0] == 0xfe && (bytes[1] & 0xc0U) == 0xc0) return Refusal::private_use;  // fec0::/10
  if (bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0d && bytes[3] == 0xb8)
    return Refusal::reserved;  // 2001:db8::/32, documentation
  if (bytes[0] == 0x20 && bytes[1] == 0x02) return Refusal::reserved;  // 6to4, may embed any IPv4
  if (bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x00 && bytes[3] == 0x00)
    return Refusal::reserved;                                // Teredo, idem
  if ((bytes[0] & 0xe0U) != 0x20) return Refusal::reserved;  // outside 2000::/3, global unicast
  return Refusal::none;
}

}  // namespace

Refusal classify(const ip::address& address) {
  return address.is_v4() ? classify4(address.to_v4()) : classify6(address.to_v6());
}

std::string_view describe(Refusal refusal) {
  switch (refusal) {
    case Refusal::none:
      return "a public address";
    case Refusal::unspecified:
      return "an unspecified address";
    case Refusal::loopback:
      return "a loopback address";
    case Refusal::private_use:
      return "a private network address";
    case Refusal::link_local:
      return "a link-local address";
    case Refusal::shared:
      return "a shared (carrier-grade NAT) address";
    case Refusal::multicast:
      return "a multicast address";
    case Refusal::reserved:
      return "a reserved address";
  }
  return "a reserved address";
}

}  // namespace liftoff::webhooks
