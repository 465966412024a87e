#pragma once
// The TLS client side every outgoing connection shares (webhook deliveries, SMTP): compiled with
// Asio's SSL support in liftoff_asio_ssl, so this header stays light.
#include <string>

using SSL = struct ssl_st;  // OpenSSL's connection
namespace boost::asio::ssl {
class context;
}

namespace liftoff::core {

// TLS 1.2 or later, peers verified against the system's CAs and those of `ca_file` (PEM; empty:
// none).
void configure_tls_client(boost::asio::ssl::context& context, const std::string& ca_file);

// Before a handshake: SNI for `host` when it is a name (RFC 6066 forbids an address there). The
// caller also checks the certificate against `host` (asio::ssl::host_name_verification).
void set_server_name(SSL* ssl, const std::string& host);

}  // namespace liftoff::core
