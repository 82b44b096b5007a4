// HttpServer: pgfanout's HTTP/1.1 server (Boost.Beast) on the daemon's io_context.
//
// It owns the HttpListener (the acceptor) and keeps track of the open HttpSessions so it can close
// them at shutdown; requests are answered by the HttpRouter it was given, which must outlive it.
// Limits come from the `http:` config (max connections, header and body sizes, read and idle
// timeouts). Metrics: pgfanout_http_requests_total{route,code}, pgfanout_http_connections,
// pgfanout_http_connections_rejected_total. This header keeps Beast out of its includers; the
// Beast code is in HttpListener / HttpSession. All methods run on the io_context's thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "http/HttpConfig.hpp"
#include "http/ListenAddress.hpp"

namespace boost::asio {
class io_context;
}

namespace pgfanout {
class Metrics;
}

namespace pgfanout::http {

class HttpRouter;
struct HttpServerState;
class HttpListener;

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, const HttpRouter& router, Metrics& metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds `options.address` and starts accepting. On failure returns false and sets `error`
  // ("cannot listen on 127.0.0.1:8080: Address already in use").
  [[nodiscard]] bool start(const http::HttpConfig& options, std::string& error);
  // The address actually bound (with the port the kernel chose when the config said 0).
  const ListenAddress& local_address() const { return bound_; }

  // Closes the acceptor; open connections finish their current request with `Connection: close`.
  void stop_accepting();
  // Closes every open connection now.
  void close_connections();
  std::size_t connection_count() const;

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<HttpServerState> state_;
  std::shared_ptr<HttpListener> listener_;
  ListenAddress bound_;
};

}  // namespace pgfanout::http
