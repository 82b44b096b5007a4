// HttpListener: accepts TCP connections for an HttpServer and starts an HttpSession for each.
//
// open() binds synchronously (so a bind failure is reported at start-up); run() starts the
// do_accept/on_accept loop. Each accepted socket gets its own strand. When http.max_connections
// sessions are open a new connection is closed at once and counted; a failing accept (out of
// file descriptors) is retried after a short pause instead of spinning. stop() closes the
// acceptor. Held by shared_ptr (enable_shared_from_this) while an accept is pending.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>

namespace pgfanout::http {

struct HttpServerState;

class HttpListener : public std::enable_shared_from_this<HttpListener> {
 public:
  HttpListener(boost::asio::io_context& io, std::shared_ptr<HttpServerState> state);

  // Opens, binds and listens; on failure returns the error and sets `step` to what failed.
  boost::beast::error_code open(const boost::asio::ip::tcp::endpoint& endpoint, std::string& step);
  void run();
  void stop();
  boost::asio::ip::tcp::endpoint local_endpoint() const;

 private:
  void do_accept();
  void on_accept(boost::beast::error_code ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  std::shared_ptr<HttpServerState> state_;
};

}  // namespace pgfanout::http
