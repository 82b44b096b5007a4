// make_tls_client_context: the TLS client side every outgoing connection of the daemon uses
// (webhooks, Redis, the JWKS fetch): TLS 1.2 or newer, the server's certificate verified against
// the system CA store or against `ca_file` alone, optionally a client certificate. There is no
// way to turn verification off; checking the host name is the caller's (it knows the name).
#pragma once

#include <memory>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace pgfanout::tls {

struct ClientFiles {
  std::string ca_file;    // empty: the system CA store
  std::string cert_file;  // client certificate (PEM chain); empty: none
  std::string key_file;   // its private key (PEM), with cert_file
};

// A new context (files are read now, so a renewed file is picked up by the next one); nullptr
// and `error` ("cannot load the CA certificates from ...: ...") when a file is unusable.
std::shared_ptr<boost::asio::ssl::context> make_tls_client_context(const ClientFiles& files,
                                                                   std::string& error);

}  // namespace pgfanout::tls
