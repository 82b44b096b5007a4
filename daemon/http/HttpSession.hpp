// HttpSession: one HTTP/1.1 connection, in the style of the Beast examples.
//
// do_read() starts reading one request (with the header and body limits of the config and a
// timeout: http.read_timeout for a connection's first request, http.idle_timeout for the next
// ones), on_read() answers it through the router, do_write()/on_write() send the response and
// loop while the connection is kept alive. A request over the header limit gets 431, over the
// body limit 413, an unparsable one 400, and the connection is closed after the response. A
// request for a take-over path (HttpRouter::add_upgrade) hands the connection to its handler.
// Responses are written one at a time, so a pipelining client is answered in order and never
// buffered without bound. Lives by shared_ptr on its own strand; close() may be called from the
// io_context's thread.
#pragma once

#include <memory>
#include <optional>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

namespace pgfanout::http {

struct HttpServerState;
struct HttpResponse;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<HttpServerState> state);
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  void run();
  void close();

 private:
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void do_write(const HttpResponse& response, bool keep_alive, bool head, std::string_view route);
  void on_write(bool keep_alive, boost::beast::error_code ec, std::size_t bytes);
  void send_error(unsigned status, std::string_view message);
  void do_close();
  bool hand_over();

  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  boost::beast::http::response<boost::beast::http::string_body> response_;
  std::shared_ptr<HttpServerState> state_;
  std::string remote_;
  unsigned requests_ = 0;
  bool handed_over_ = false;
};

}  // namespace pgfanout::http
