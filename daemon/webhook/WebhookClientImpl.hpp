// The parts of WebhookClient shared by its connection pool (WebhookClient.cpp) and its
// connections (WebhookConnection.cpp): a queued request, the pools per endpoint, and one
// connection's state machine. Private to the webhook area.
#pragma once

#include <openssl/ssl.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <map>
#include <optional>
#include <set>

#include "webhook/WebhookClient.hpp"

namespace pgfanout::webhook {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using boost::system::error_code;

struct Job {
  HttpAttempt attempt;
  WebhookClient::Done done;
  bool retried_stale = false;
};

class Connection;

struct WebhookClient::Impl : std::enable_shared_from_this<WebhookClient::Impl> {
  struct Pool {
    Endpoint endpoint;
    int active = 0;
    std::deque<std::shared_ptr<Connection>> idle;
    std::set<std::shared_ptr<Connection>> busy;
    std::deque<Job> waiting;
  };
  Impl(asio::io_context& io_, Options o) : io(io_), opts(o) {}

  void send(Job job);
  void pump(Pool& pool);
  void finished(Pool& pool, const std::shared_ptr<Connection>& conn, bool reusable, Job job,
                AttemptResult&& result);
  std::shared_ptr<ssl::context> ssl_context(const std::string& ca_file, std::string& error);
  void shutdown(bool notify);
  asio::io_context& io;
  Options opts;
  std::map<std::string, std::unique_ptr<Pool>> pools;
  std::map<std::string, std::shared_ptr<ssl::context>> ssl_contexts;
  std::size_t open = 0;
  bool closed = false;
};

// One connection to one endpoint, carrying one request at a time. Async steps come in pairs
// (do_x starts, on_x finishes); a deadline timer closes the socket when a phase takes too long,
// which makes the pending operation fail.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<WebhookClient::Impl> client, WebhookClient::Impl::Pool& pool,
             std::shared_ptr<ssl::context> tls_context)
      : client_(std::move(client)),
        pool_(pool),
        tls_context_(std::move(tls_context)),
        resolver_(client_->io),
        deadline_(client_->io) {}

  void start(Job job);

  // Whether an idle connection may carry another request.
  bool fresh(SteadyClock::time_point now) const;
  void close();

  // Drops the pending callback (the client is going away) and closes.
  void abandon();

 private:
  template <typename F>
  void with_stream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }

  void arm(std::chrono::milliseconds after);
  void do_resolve();
  void on_resolve(error_code ec, tcp::resolver::results_type results);
  void on_connect(error_code ec);
  void on_handshake(error_code ec);
  void on_connected();
  void do_write();
  void on_write(error_code ec);
  void do_read();
  void on_read(error_code ec);
  AttemptResult result_of(const http::response<http::string_body>& res) const;

  // A kept-alive connection the server closed while it was idle: try once on a new one.
  bool retry_stale();
  void fail(error_code ec, const char* phase);
  void complete(bool reusable, AttemptResult&& result);
  std::shared_ptr<WebhookClient::Impl> client_;
  WebhookClient::Impl::Pool& pool_;
  std::shared_ptr<ssl::context> tls_context_;
  tcp::resolver resolver_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<ssl::stream<beast::tcp_stream>> tls_;
  asio::steady_timer deadline_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  std::optional<http::response_parser<http::string_body>> parser_;
  Job job_;
  const char* phase_ = "connect";
  bool connected_ = false;
  bool reused_ = false;
  bool timed_out_ = false;
  std::uint64_t generation_ = 0;
  SteadyClock::time_point started_{}, idle_since_{};
};

}  // namespace pgfanout::webhook
