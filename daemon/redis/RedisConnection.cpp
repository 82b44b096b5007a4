#include "redis/RedisConnection.hpp"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "metrics/Metrics.hpp"
#include "redis/RedisLink.hpp"

namespace pgfanout::redis {

RedisConnection::RedisConnection(asio::io_context& io, Metrics& metrics, Options options,
                                 Callbacks callbacks)
    : io_(io),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      reconnect_timer_(io),
      connect_timer_(io),
      watchdog_(io),
      rng_(std::random_device{}()),
      own_connected_(options_.cluster_node ? std::make_unique<Gauge>() : nullptr),
      connected_(options_.cluster_node
                     ? *own_connected_
                     : metrics.gauge("pgfanout_redis_connected",
                                     "1 while the Redis target is connected (a cluster: its slot "
                                     "map is complete and every primary is connected)",
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
