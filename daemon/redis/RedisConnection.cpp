#include "redis/RedisConnection.hpp"

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <optional>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include "metrics/Metrics.hpp"
#include "redis/RedisReplyReader.hpp"

namespace pgfanout::redis {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

// Bytes asked of the socket per read; replies larger than this arrive over several reads.
constexpr std::size_t kReadChunk = 16 * 1024;
// A write buffer that grew beyond this (a burst of big commands) is given back after use.
constexpr std::size_t kKeepWriteCapacity = 1024 * 1024;

constexpr const char* kFailureNames[] = {"resolve", "connect", "tls", "login", "timeout"};

bool is_tls_error(const error_code& ec) {
  return ec.category() == asio::error::get_ssl_category() ||
         ec.category() == ssl::error::get_stream_category();
}

// The client context for one connect: a fresh one each time, so renewed files are picked up.
std::shared_ptr<ssl::context> tls_context(const RedisTls& tls, std::string& error) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  if (tls.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(tls.ca_file, ec);
  }
  if (ec) {
    error = "cannot load the CA certificates from " +
            (tls.ca_file.empty() ? std::string("the system store") : tls.ca_file) + ": " +
            ec.message();
    return nullptr;
  }
  if (!tls.cert_file.empty()) {
    ctx->use_certificate_chain_file(tls.cert_file, ec);
    if (ec) {
      error = "cannot load the client certificate " + tls.cert_file + ": " + ec.message();
      return nullptr;
    }
    ctx->use_private_key_file(tls.key_file, ssl::context::pem, ec);
    if (ec) {
      error = "cannot load the client key " + tls.key_file + ": " + ec.message();
      return nullptr;
    }
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

}  // namespace

class RedisConnection::Link : public std::enable_shared_from_this<Link> {
 public:
  Link(asio::io_context& io, RedisConnection* owner_) : owner(owner_), resolver(io) {}

  template <class F>
  void with_stream(F&& f) {
    if (tls) {
      f(*tls);
    } else if (tcp_socket) {
      f(*tcp_socket);
    } else if (local_socket) {
      f(*local_socket);
    }
  }

  void close_socket() {
    error_code ignored;
    resolver.cancel();
    if (tls) tls->next_layer().close(ignored);
    if (tcp_socket) tcp_socket->close(ignored);
    if (local_socket) local_socket->close(ignored);
  }

  // The verification result OpenSSL recorded, when it says more than the handshake's error.
  std::string verify_detail() {
    if (!tls) return {};
    long result = SSL_get_verify_result(tls->native_handle());
    if (result == X509_V_OK) return {};
    return std::string(" (") + X509_verify_cert_error_string(result) + ")";
  }

  void start_read() {
    with_stream([&](auto& s) {
      s.async_read_some(
          asio::buffer(in),
          [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
    });
  }

  void on_read(error_code ec, std::size_t n) {
    if (owner == nullptr) return;
    if (ec) {
      owner->io_failed("read", ec);
      return;
    }
    if (!reader.feed(in.data(), n)) {
      owner->lost("bad reply from Redis: " + reader.error());
      return;
    }
    // A handler may close the connection (owner becomes nullptr): stop handing out replies then;
    // close() gives the handlers still waiting their nullptr.
    while (owner != nullptr) {
      RedisReplyReader::Reply reply = reader.next();
      if (!reply) {
        if (reader.failed()) owner->lost("bad reply from Redis: " + reader.error());
        break;
      }
      if (handlers.empty()) {
        owner->lost("Redis sent a reply no command asked for");
        return;
      }
      ReplyHandler handler = std::move(handlers.front());
      handlers.pop_front();
      if (owner->in_flight_ > 0) --owner->in_flight_;
      owner->last_reply_ = Clock::now();
      handler(reply.get());
    }
    if (owner != nullptr) start_read();
  }

  // Sends what accumulated in `out` unless a write is on the wire; on_write sends the rest.
  void start_write() {
    if (writing_now || out.empty()) return;
    writing.clear();
    writing.swap(out);
    writing_now = true;
    with_stream([&](auto& s) {
      asio::async_write(
          s, asio::buffer(writing),
          [self = shared_from_this()](error_code ec, std::size_t) { self->on_write(ec); });
    });
  }

  void on_write(error_code ec) {
    writing_now = false;
    if (writing.capacity() > kKeepWriteCapacity) std::string().swap(writing);
    if (owner == nullptr) return;
    if (ec) {
      owner->io_failed("write", ec);
      return;
    }
    start_write();
  }

  RedisConnection* owner;  // nullptr once closed: late completions do nothing
  tcp::resolver resolver;
  std::vector<tcp::endpoint> endpoints;       // the addresses to try, in order
  std::shared_ptr<ssl::context> tls_context;  // before `tls`, which uses it
  std::optional<ssl::stream<tcp::socket>> tls;
  std::optional<tcp::socket> tcp_socket;
  std::optional<asio::local::stream_protocol::socket> local_socket;
  std::deque<ReplyHandler> handlers;  // one per command written or waiting to be
  std::string out;                    // formatted commands not yet on the wire
  std::string writing;                // the commands of the write in progress
  bool writing_now = false;
  RedisReplyReader reader;
  std::array<char, kReadChunk> in;
};

RedisConnection::RedisConnection(asio::io_context& io, Metrics& metrics, Options options,
                                 Callbacks callbacks)
    : io_(io),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      reconnect_timer_(io),
      connect_timer_(io),
      watchdog_(io),
      rng_(std::random_device{}()),
      connected_(metrics.gauge("pgfanout_redis_connected", "1 while the Redis target is connected",
                               {{"target", options_.name}})),
      reconnects_(metrics.counter("pgfanout_redis_disconnects_total",
                                  "Redis connections lost, refused or timed out",
                                  {{"target", options_.name}})),
      metrics_(metrics) {
  for (std::size_t i = 0; i < kFailures; ++i) {
    connect_errors_[i] = &metrics.counter(
        "pgfanout_redis_connect_errors_total",
        "Redis connect attempts that failed, by reason (resolve, connect, tls, login, timeout)",
        {{"target", options_.name}, {"reason", kFailureNames[i]}});
  }
}

RedisConnection::~RedisConnection() {
  stop();
}

void RedisConnection::start() {
  if (state_ != State::Idle) return;
  connect();
  arm_watchdog();
}

void RedisConnection::stop() {
  if (state_ == State::Stopped) return;
  state_ = State::Stopped;
  reconnect_timer_.cancel();
  watchdog_.cancel();
  close();
}

void RedisConnection::connect() {
  if (state_ == State::Stopped) return;
  state_ = State::Connecting;
  ++generation_;
  auto link = std::make_shared<Link>(io_, this);
  link_ = link;
  arm_connect_timer();
  const RedisUrl& url = options_.url;
  if (url.is_unix()) {
    link->local_socket.emplace(io_);
    link->local_socket->async_connect(
        asio::local::stream_protocol::endpoint(url.socket_path), [link](error_code ec) {
          if (link->owner == nullptr) return;
          if (ec) {
            link->owner->fail(
                Failure::Connect,
                "cannot connect to " + link->owner->options_.url.socket_path + ": " + ec.message());
            return;
          }
          link->owner->on_transport(link);
        });
    return;
  }
  if (!make_socket(link)) return;
  error_code ec;
  auto address = asio::ip::make_address(url.host, ec);
  if (!ec) {
    link->endpoints.emplace_back(address, static_cast<unsigned short>(url.port));
    connect_tcp(link);
    return;
  }
  // Resolve on every attempt, asynchronously: a failover may move the name.
  link->resolver.async_resolve(url.host, std::to_string(url.port),
                               [link](error_code rec, tcp::resolver::results_type results) {
                                 if (link->owner == nullptr) return;
                                 RedisConnection& self = *link->owner;
                                 if (rec || results.empty()) {
                                   self.fail(Failure::Resolve,
                                             "cannot resolve " + self.options_.url.host + ": " +
                                                 (rec ? rec.message() : "no address"));
                                   return;
                                 }
                                 for (const auto& r : results) {
                                   link->endpoints.push_back(r.endpoint());
                                 }
                                 self.connect_tcp(link);
                               });
}

// Creates the TCP socket of `link`, or for rediss:// the TLS stream with its context, server
// name and verification. False (and the attempt failed) when the TLS files cannot be used.
bool RedisConnection::make_socket(const std::shared_ptr<Link>& link) {
  const RedisUrl& url = options_.url;
  if (!url.tls.enabled) {
    link->tcp_socket.emplace(io_);
    return true;
  }
  std::string error;
  link->tls_context = tls_context(url.tls, error);
  if (!link->tls_context) {
    fail(Failure::Tls, "TLS: " + error);
    return false;
  }
  link->tls.emplace(io_, *link->tls_context);
  const std::string& name = url.tls.expected_name(url.host);
  SSL* ssl = link->tls->native_handle();
  error_code ec;
  asio::ip::make_address(name, ec);
  bool name_set;
  if (!ec) {
    name_set = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
  } else {
    // SNI for servers with several certificates; SSL_set1_host makes the handshake fail unless
    // the certificate is for this name.
    name_set =
        SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 && SSL_set1_host(ssl, name.c_str()) == 1;
  }
  if (!name_set) {
    fail(Failure::Tls, "TLS: cannot use \"" + name + "\" as the server name");
    return false;
  }
  return true;
}

// Connects to each address in turn, as the resolver returned them, until one answers.
void RedisConnection::connect_tcp(const std::shared_ptr<Link>& link) {
  auto& socket = link->tls ? link->tls->next_layer() : *link->tcp_socket;
  asio::async_connect(socket, link->endpoints, [link](error_code ec, const tcp::endpoint&) {
    if (link->owner == nullptr) return;
    if (ec) {
      link->owner->fail(Failure::Connect, "cannot connect to " + link->owner->options_.url.host +
                                              ": " + ec.message());
      return;
    }
    link->owner->on_transport(link);
  });
}

// The socket is connected: for TLS, shake hands first; then log in.
void RedisConnection::on_transport(const std::shared_ptr<Link>& link) {
  if (link->tls || link->tcp_socket) {
    error_code ignored;
    auto& socket = link->tls ? link->tls->next_layer() : *link->tcp_socket;
    socket.set_option(tcp::no_delay(true), ignored);
  }
  if (!link->tls) {
    handshake();
    return;
  }
  link->tls->async_handshake(ssl::stream_base::client, [link](error_code ec) {
    if (link->owner == nullptr) return;
    if (ec) {
      link->owner->fail(Failure::Tls,
                        "TLS handshake failed: " + ec.message() + link->verify_detail());
      return;
    }
    link->owner->handshake();
  });
}

void RedisConnection::arm_connect_timer() {
  auto gen = generation_;
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([this, gen](error_code ec) {
    if (ec || gen != generation_ || (state_ != State::Connecting && state_ != State::Handshake)) {
      return;
    }
    fail(Failure::Timeout, "connection attempt timed out after " +
                               std::to_string(options_.connect_timeout.count()) + " ms");
  });
}

void RedisConnection::handshake() {
  state_ = State::Handshake;
  link_->start_read();
  auto error = std::make_shared<std::string>();
  auto gen = generation_;
  auto check = [this, error, gen](const char* what) {
    return [this, error, gen, what](redisReply* r) {
      if (r == nullptr || gen != generation_) return;
      if (r->type == REDIS_REPLY_ERROR && error->empty()) {
        *error = std::string(what) + " failed: " + std::string(r->str, r->len);
      }
    };
  };
  const RedisUrl& url = options_.url;
  if (!url.password.empty()) {
    if (url.user.empty()) {
      const char* argv[] = {"AUTH", url.password.c_str()};
      std::size_t lens[] = {4, url.password.size()};
      send(2, argv, lens, check("AUTH"));
    } else {
      const char* argv[] = {"AUTH", url.user.c_str(), url.password.c_str()};
      std::size_t lens[] = {4, url.user.size(), url.password.size()};
      send(3, argv, lens, check("AUTH"));
    }
  }
  if (url.db != 0) {
    std::string db = std::to_string(url.db);
    const char* argv[] = {"SELECT", db.c_str()};
    std::size_t lens[] = {6, db.size()};
    send(2, argv, lens, check("SELECT"));
  }
  {
    const char* argv[] = {"CLIENT", "SETNAME", "pgfanout"};
    std::size_t lens[] = {6, 7, 8};
    send(3, argv, lens, [](redisReply*) {});  // older servers may refuse; that is harmless
  }
  const char* argv[] = {"PING"};
  std::size_t lens[] = {4};
  send(1, argv, lens, [this, error, gen](redisReply* r) {
    if (r == nullptr || gen != generation_ || state_ != State::Handshake) return;
    if (error->empty() && r->type == REDIS_REPLY_ERROR) {
      *error = "PING failed: " + std::string(r->str, r->len);  // e.g. LOADING
    }
    if (!error->empty()) {
      fail(Failure::Login, *error);
      return;
    }
    connect_timer_.cancel();
    state_ = State::Ready;
    connected_.set(1);
    spdlog::info("Redis target {} ({}): connected", options_.name, options_.url.describe());
    if (callbacks_.on_ready) callbacks_.on_ready();
  });
}

void RedisConnection::command(std::size_t argc, const char** argv, const std::size_t* lens,
                              ReplyHandler handler) {
  if (state_ != State::Ready) {
    handler(nullptr);
    return;
  }
  send(argc, argv, lens, std::move(handler));
}

void RedisConnection::send(std::size_t argc, const char** argv, const std::size_t* lens,
                           ReplyHandler handler) {
  char* formatted = nullptr;
  int len = link_ ? redisFormatCommandArgv(&formatted, static_cast<int>(argc), argv, lens) : -1;
  if (len < 0) {
    handler(nullptr);
    return;
  }
  link_->out.append(formatted, static_cast<std::size_t>(len));
  redisFreeCommand(formatted);
  link_->handlers.push_back(std::move(handler));
  if (in_flight_++ == 0) last_reply_ = Clock::now();
  link_->start_write();
}

void RedisConnection::io_failed(const std::string& what, const error_code& ec) {
  std::string why = ec == asio::error::eof ? std::string("connection closed by Redis")
                                           : what + " failed: " + ec.message();
  if (state_ == State::Ready) {
    lost(why);
  } else if (is_tls_error(ec)) {
    // Refused after the handshake, e.g. TLS 1.3 servers that reject a missing client
    // certificate only when the first bytes arrive.
    fail(Failure::Tls, "TLS: " + why + (link_ ? link_->verify_detail() : std::string()));
  } else {
    fail(Failure::Connect, why);
  }
}

void RedisConnection::reconnect(const std::string& why) {
  if (state_ == State::Stopped || state_ == State::Idle) return;
  lost(why);
}

void RedisConnection::fail(Failure reason, const std::string& why) {
  if (state_ == State::Stopped) return;
  connect_errors_[static_cast<std::size_t>(reason)]->inc();
  lost(why);
}

void RedisConnection::lost(const std::string& why) {
  if (state_ == State::Stopped) return;
  bool was_ready = state_ == State::Ready;
  state_ = State::Idle;
  reconnects_.inc();
  spdlog::warn("Redis target {} ({}): {}; reconnecting", options_.name, options_.url.describe(),
               why);
  close();
  if (was_ready && callbacks_.on_down) callbacks_.on_down(why);
  schedule_reconnect();
}

void RedisConnection::close() {
  ++generation_;
  in_flight_ = 0;
  connected_.set(0);
  connect_timer_.cancel();
  std::shared_ptr<Link> link = std::move(link_);
  link_.reset();
  if (!link) return;
  link->owner = nullptr;
  link->close_socket();
  // Every command still waiting learns that its reply will not come.
  std::deque<ReplyHandler> waiting = std::move(link->handlers);
  link->handlers.clear();
  for (auto& handler : waiting) handler(nullptr);
}

void RedisConnection::schedule_reconnect() {
  if (state_ == State::Stopped) return;
  double base =
      static_cast<double>(options_.reconnect_min.count()) * std::pow(2.0, std::min(attempts_, 30));
  base = std::min(base, static_cast<double>(options_.reconnect_max.count()));
  // Equal jitter, as the PostgreSQL listener: half fixed, half random.
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  auto delay = std::chrono::milliseconds(static_cast<long long>(base * jitter(rng_)));
  ++attempts_;
  auto gen = generation_;
  reconnect_timer_.expires_after(delay);
  reconnect_timer_.async_wait([this, gen](error_code ec) {
    if (ec || gen != generation_ || state_ != State::Idle) return;
    connect();
  });
}

void RedisConnection::arm_watchdog() {
  auto period =
      std::min<std::chrono::milliseconds>(options_.command_timeout / 4, std::chrono::seconds(1));
  watchdog_.expires_after(period);
  watchdog_.async_wait([this](error_code ec) {
    if (ec || state_ == State::Stopped) return;
    if ((state_ == State::Ready || state_ == State::Handshake) && in_flight_ > 0 &&
        Clock::now() - last_reply_ > options_.command_timeout) {
      lost("no reply for " + std::to_string(options_.command_timeout.count()) + " ms");
    }
    arm_watchdog();
  });
}

}  // namespace pgfanout::redis
