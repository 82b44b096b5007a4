#include "tls/TlsClient.hpp"

#include <boost/asio/ssl/context.hpp>

namespace pgfanout::tls {

namespace ssl = boost::asio::ssl;

std::shared_ptr<ssl::context> make_tls_client_context(const ClientFiles& files,
                                                      std::string& error) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  boost::system::error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  if (files.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(files.ca_file, ec);
  }
  if (ec) {
    error = "cannot load the CA certificates from " +
            (files.ca_file.empty() ? std::string("the system store") : files.ca_file) + ": " +
            ec.message();
    return nullptr;
  }
  if (!files.cert_file.empty()) {
    ctx->use_certificate_chain_file(files.cert_file, ec);
    if (ec) {
      error = "cannot load the client certificate " + files.cert_file + ": " + ec.message();
      return nullptr;
    }
    ctx->use_private_key_file(files.key_file, ssl::context::pem, ec);
    if (ec) {
      error = "cannot load the client key " + files.key_file + ": " + ec.message();
      return nullptr;
    }
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

}  // namespace pgfanout::tls
