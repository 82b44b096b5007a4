// https_get: one HTTPS GET request (Boost.Beast over OpenSSL), for documents the daemon fetches
// itself such as a JWKS.
//
// HTTPS only: the server's certificate is verified against the system CA store, or against
// `ca_file` alone when one is given, and must name the URL's host (SNI is sent for a host name).
// There is no way to turn the verification off. Resolving, connecting, the handshake, the request
// and the response together are bounded by `timeout`; a body larger than `max_body` fails the
// request. Redirects are not followed (a 3xx is returned as it is). The callback runs exactly
// once, on the io_context's thread. Beast and Asio SSL stay inside the .cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
}

namespace pgfanout::http {

struct HttpsUrl {
  std::string host;  // without brackets for an IPv6 literal
  std::string port = "443";
  std::string target = "/";
};

// Parses "https://HOST[:PORT][/PATH[?QUERY]]"; nullopt (and `error`) otherwise, `http://` and
// URLs with user info or a fragment included.
std::optional<HttpsUrl> parse_https_url(std::string_view url, std::string& error);

struct HttpsGetOptions {
  std::string ca_file;  // "" for the system CA store
  std::chrono::milliseconds timeout{10'000};
  std::size_t max_body = 1024 * 1024;
};

struct HttpsGetResult {
  int status = 0;  // 0 when no complete response came (`error` says why)
  std::string body;
  std::string error;  // e.g. "tls handshake: certificate verify failed"
};

void https_get(boost::asio::io_context& io, const HttpsUrl& url, const HttpsGetOptions& options,
               std::function<void(HttpsGetResult)> done);

}  // namespace pgfanout::http
