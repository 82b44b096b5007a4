// WebhookClient: the HTTP/1.1 client behind webhook deliveries (Boost.Beast, OpenSSL for https).
//
// send() makes one attempt: it takes an idle kept-alive connection to the request's endpoint, or
// opens a new one (DNS through Asio's resolver, TCP connect, for https a TLS handshake with SNI,
// the certificate verified against the system store or the endpoint's ca_file, and the host name
// verified), writes the request and reads the response. At most max_connections_per_endpoint
// requests run per endpoint; the rest wait in that endpoint's queue, in order (the callers bound
// how much they queue). Resolving, connecting and the handshake together are bounded by
// connect_timeout, the whole attempt (waiting for a connection excluded) by the request's
// timeout. A request that fails on a reused connection before any response byte arrived (the
// server closed it while idle) is tried once more on a new connection. The callback always runs,
// exactly once, with status 0 and an error text when no complete response came.
//
// Owned by one executor; all calls and callbacks on the io_context's thread. Beast and Asio SSL
// stay inside the .cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "webhook/RetryPolicy.hpp"
#include "webhook/WebhookAction.hpp"

namespace boost::asio {
class io_context;
}

namespace pgfanout::webhook {

struct HttpAttempt {
  Endpoint endpoint;
  std::string method = "POST";
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{10'000};
};

class WebhookClient {
 public:
  struct Options {
    int max_connections_per_endpoint = 8;
    std::chrono::milliseconds connect_timeout{5'000};
    std::chrono::milliseconds idle_timeout{30'000};
    std::size_t max_response_body = 64 * 1024;  // read beyond this: the connection is closed
    std::size_t excerpt_bytes = 1024;           // kept in AttemptResult::body_excerpt
  };
  using Done = std::function<void(AttemptResult&&)>;

  WebhookClient(boost::asio::io_context& io, Options options);
  ~WebhookClient();
  WebhookClient(const WebhookClient&) = delete;
  WebhookClient& operator=(const WebhookClient&) = delete;

  void send(HttpAttempt attempt, Done done);
  // Requests running or waiting for a connection.
  std::size_t in_flight() const;
  // Connections open (busy or idle), for tests.
  std::size_t open_connections() const;
  // Closes idle connections and fails every request (running or waiting) with "closed".
  void close();

 private:
  friend class Connection;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace pgfanout::webhook
