#include "liftoff/core/tls_client.hpp"

#include <openssl/ssl.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>

namespace liftoff::core {
namespace ssl = boost::asio::ssl;

void configure_tls_client(ssl::context& context, const std::string& ca_file) {
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  context.set_default_verify_paths();
  if (!ca_file.empty()) context.load_verify_file(ca_file);
  context.set_verify_mode(ssl::verify_peer);
}

void set_server_name(SSL* ssl, const std::string& host) {
  boost::system::error_code not_an_address;
  (void)boost::asio::ip::make_address(host, not_an_address);
  if (not_an_address) SSL_set_tlsext_host_name(ssl, host.c_str());
}

}  // namespace liftoff::core
