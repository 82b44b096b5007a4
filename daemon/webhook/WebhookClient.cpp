#include "webhook/WebhookClient.hpp"

#include <openssl/ssl.h>

#include <deque>
#include <map>
#include <optional>
#include <set>

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

namespace pgfanout::webhook {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

struct Job {
  HttpAttempt attempt;
  WebhookClient::Done done;
  bool retried_stale = false;
};

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

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

  void start(Job job) {
    job_ = std::move(job);
    started_ = SteadyClock::now();
    timed_out_ = false;
    ++generation_;
    reused_ = connected_;
    if (connected_) {
      arm(job_.attempt.timeout);
      do_write();
    } else {
      phase_ = "connect";
      arm(std::min(client_->opts.connect_timeout, job_.attempt.timeout));
      do_resolve();
    }
  }

  // Whether an idle connection may carry another request.
  bool fresh(SteadyClock::time_point now) const {
    return connected_ && now - idle_since_ < client_->opts.idle_timeout;
  }

  void close() {
    if (connected_) {
      connected_ = false;
      --client_->open;
    }
    resolver_.cancel();
    error_code ec;
    if (tls_) beast::get_lowest_layer(*tls_).socket().close(ec);
    if (plain_) plain_->socket().close(ec);
  }

  // Drops the pending callback (the client is going away) and closes.
  void abandon() {
    job_.done = nullptr;
    close();
  }

 private:
  template <typename F>
  void with_stream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }

  void arm(std::chrono::milliseconds after) {
    deadline_.expires_after(after);
    deadline_.async_wait([self = shared_from_this(), g = generation_](error_code ec) {
      if (ec || g != self->generation_) return;
      self->timed_out_ = true;
      self->close();
    });
  }

  void do_resolve() {
    resolver_.async_resolve(
        job_.attempt.endpoint.host, job_.attempt.endpoint.port,
        [self = shared_from_this()](error_code ec, tcp::resolver::results_type results) {
          self->on_resolve(ec, std::move(results));
        });
  }

  void on_resolve(error_code ec, tcp::resolver::results_type results) {
    if (ec) return fail(ec, "resolve");
    const Endpoint& ep = job_.attempt.endpoint;
    plain_.reset();
    tls_.reset();
    if (ep.tls) {
      tls_.emplace(client_->io, *tls_context_);
      if (!is_ip_literal(ep.host)) {
        SSL_set_tlsext_host_name(tls_->native_handle(), ep.host.c_str());
      }
      tls_->set_verify_mode(ssl::verify_peer);
      tls_->set_verify_callback(ssl::host_name_verification(ep.host));
    } else {
      plain_.emplace(client_->io);
    }
    auto connect = [&](auto& stream) {
      beast::get_lowest_layer(stream).async_connect(
          results,
          [self = shared_from_this()](error_code e, const tcp::endpoint&) { self->on_connect(e); });
    };
    with_stream(connect);
  }

  void on_connect(error_code ec) {
    if (ec) return fail(ec, "connect");
    error_code ignored;
    auto& socket = tls_ ? beast::get_lowest_layer(*tls_).socket() : plain_->socket();
    socket.set_option(tcp::no_delay(true), ignored);
    if (!tls_) return on_connected();
    phase_ = "tls handshake";
    tls_->async_handshake(ssl::stream_base::client,
                          [self = shared_from_this()](error_code e) { self->on_handshake(e); });
  }

  void on_handshake(error_code ec) {
    if (ec) return fail(ec, "tls handshake");
    on_connected();
  }

  void on_connected() {
    connected_ = true;
    ++client_->open;
    auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started_);
    if (elapsed >= job_.attempt.timeout) {
      timed_out_ = true;
      return fail(asio::error::timed_out, "connect");
    }
    ++generation_;  // the connect deadline no longer applies
    arm(job_.attempt.timeout - elapsed);
    do_write();
  }

  void do_write() {
    phase_ = "send";
    const HttpAttempt& a = job_.attempt;
    req_ = {};
    req_.method(http::string_to_verb(a.method));
    req_.target(a.target);
    req_.version(11);
    const Endpoint& ep = a.endpoint;
    std::string host = ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host;
    if (ep.port != (ep.tls ? "443" : "80")) host += ":" + ep.port;
    req_.set(http::field::host, host);
    req_.set(http::field::user_agent, "pgfanout/" PGFANOUT_VERSION);
    bool has_type = false;
    for (const auto& [name, value] : a.headers) {
      if (beast::iequals(name, "content-type")) has_type = true;
      req_.set(name, value);
    }
    if (!has_type) req_.set(http::field::content_type, "application/json");
    req_.body() = a.body;
    req_.keep_alive(true);
    req_.prepare_payload();
    with_stream([&](auto& stream) {
      http::async_write(stream, req_, [self = shared_from_this()](error_code ec, std::size_t) {
        self->on_write(ec);
      });
    });
  }

  void on_write(error_code ec) {
    if (ec) {
      if (retry_stale()) return;
      return fail(ec, "send");
    }
    do_read();
  }

  void do_read() {
    phase_ = "response";
    parser_.emplace();
    parser_->body_limit(client_->opts.max_response_body);
    buffer_.clear();
    with_stream([&](auto& stream) {
      http::async_read(
          stream, buffer_, *parser_,
          [self = shared_from_this()](error_code ec, std::size_t) { self->on_read(ec); });
    });
  }

  void on_read(error_code ec) {
    if (ec == http::error::body_limit && parser_->is_header_done()) {
      // A complete status and headers with an oversized body: the status counts.
      AttemptResult r = result_of(parser_->get());
      return complete(false, std::move(r));
    }
    if (ec) {
      if (!parser_->got_some() && retry_stale()) return;
      if (parser_->got_some() && !timed_out_) {
        return fail(ec, "response (the connection closed mid-response)");
      }
      return fail(ec, "response");
    }
    auto& res = parser_->get();
    AttemptResult r = result_of(res);
    complete(res.keep_alive() && !timed_out_, std::move(r));
  }

  AttemptResult result_of(const http::response<http::string_body>& res) const {
    AttemptResult r;
    r.status = static_cast<int>(res.result_int());
    if (auto it = res.find(http::field::retry_after); it != res.end()) {
      r.retry_after = std::string(it->value());
    }
    r.body_excerpt = res.body().substr(0, client_->opts.excerpt_bytes);
    return r;
  }

  // A kept-alive connection the server closed while it was idle: try once on a new one.
  bool retry_stale() {
    if (!reused_ || job_.retried_stale || timed_out_) return false;
    close();
    Job job = std::move(job_);
    job.retried_stale = true;
    start(std::move(job));
    return true;
  }

  void fail(error_code ec, const char* phase) {
    AttemptResult r;
    if (timed_out_) {
      r.error = std::string("timeout during ") + phase_;
    } else {
      r.error = std::string(phase) + ": " + ec.message();
    }
    complete(false, std::move(r));
  }

  void complete(bool reusable, AttemptResult&& result) {
    ++generation_;
    deadline_.cancel();
    if (!reusable) close();
    idle_since_ = SteadyClock::now();
    Job job = std::move(job_);
    job_ = {};
    client_->finished(pool_, shared_from_this(), reusable, std::move(job), std::move(result));
  }

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

std::shared_ptr<ssl::context> WebhookClient::Impl::ssl_context(const std::string& ca_file,
                                                               std::string& error) {
  if (auto it = ssl_contexts.find(ca_file); it != ssl_contexts.end()) return it->second;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(ca_file, ec);
  }
  if (ec) {
    error = "tls: cannot load " + (ca_file.empty() ? std::string("the system CA store") : ca_file) +
            ": " + ec.message();
    return nullptr;
  }
  ctx->set_verify_mode(ssl::verify_peer);
  ssl_contexts.emplace(ca_file, ctx);
  return ctx;
}

void WebhookClient::Impl::send(Job job) {
  if (closed) {
    asio::post(io, [done = std::move(job.done)]() mutable {
      AttemptResult r;
      r.error = "closed";
      if (done) done(std::move(r));
    });
    return;
  }
  auto key = job.attempt.endpoint.key();
  auto it = pools.find(key);
  if (it == pools.end()) {
    auto pool = std::make_unique<Pool>();
    pool->endpoint = job.attempt.endpoint;
    it = pools.emplace(key, std::move(pool)).first;
  }
  it->second->waiting.push_back(std::move(job));
  pump(*it->second);
}

void WebhookClient::Impl::pump(Pool& pool) {
  while (!pool.waiting.empty() && !closed) {
    std::shared_ptr<Connection> conn;
    auto now = SteadyClock::now();
    while (!pool.idle.empty()) {
      conn = std::move(pool.idle.back());
      pool.idle.pop_back();
      if (conn->fresh(now)) break;
      conn->close();
      conn.reset();
    }
    if (!conn) {
      if (pool.active >= opts.max_connections_per_endpoint) return;
      std::shared_ptr<ssl::context> ctx;
      if (pool.endpoint.tls) {
        std::string error;
        ctx = ssl_context(pool.endpoint.ca_file, error);
        if (!ctx) {
          Job job = std::move(pool.waiting.front());
          pool.waiting.pop_front();
          asio::post(io, [done = std::move(job.done), error]() mutable {
            AttemptResult r;
            r.error = error;
            if (done) done(std::move(r));
          });
          continue;
        }
      }
      conn = std::make_shared<Connection>(shared_from_this(), pool, std::move(ctx));
    }
    ++pool.active;
    pool.busy.insert(conn);
    Job job = std::move(pool.waiting.front());
    pool.waiting.pop_front();
    conn->start(std::move(job));
  }
}

void WebhookClient::Impl::finished(Pool& pool, const std::shared_ptr<Connection>& conn,
                                   bool reusable, Job job, AttemptResult&& result) {
  --pool.active;
  pool.busy.erase(conn);
  if (reusable && !closed) {
    pool.idle.push_back(conn);
  } else {
    conn->close();
  }
  pump(pool);
  if (job.done) job.done(std::move(result));
}

void WebhookClient::Impl::shutdown(bool notify) {
  closed = true;
  std::vector<Job> failed;
  for (auto& [_, pool] : pools) {
    for (auto& c : pool->idle) c->close();
    pool->idle.clear();
    for (auto& job : pool->waiting) failed.push_back(std::move(job));
    pool->waiting.clear();
    auto busy = pool->busy;
    for (const auto& c : busy) {
      if (notify) {
        c->close();  // the pending operation fails and reports
      } else {
        c->abandon();
      }
    }
  }
  if (!notify) return;
  for (auto& job : failed) {
    AttemptResult r;
    r.error = "closed";
    if (job.done) job.done(std::move(r));
  }
}

WebhookClient::WebhookClient(asio::io_context& io, Options options)
    : impl_(std::make_shared<Impl>(io, options)) {}

WebhookClient::~WebhookClient() {
  impl_->shutdown(false);
}

void WebhookClient::send(HttpAttempt attempt, Done done) {
  impl_->send(Job{std::move(attempt), std::move(done)});
}

std::size_t WebhookClient::in_flight() const {
  std::size_t n = 0;
  for (const auto& [_, pool] : impl_->pools) {
    n += static_cast<std::size_t>(pool->active) + pool->waiting.size();
  }
  return n;
}

std::size_t WebhookClient::open_connections() const {
  return impl_->open;
}

void WebhookClient::close() {
  impl_->shutdown(true);
}

}  // namespace pgfanout::webhook
