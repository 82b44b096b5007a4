#include "redis/RedisConnection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "metrics/Metrics.hpp"
#include "redis/RedisAsioAdapter.hpp"

namespace pgfanout::redis {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct RedisConnection::Pending {
  RedisConnection* self;
  std::uint64_t generation;
  ReplyHandler handler;
};

RedisConnection::RedisConnection(asio::io_context& io, Metrics& metrics, Options options,
                                 Callbacks callbacks)
    : io_(io),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      resolver_(io),
      reconnect_timer_(io),
      connect_timer_(io),
      watchdog_(io),
      rng_(std::random_device{}()),
      connected_(metrics.gauge("pgfanout_redis_connected", "1 while the Redis target is connected",
                               {{"target", options_.name}})),
      reconnects_(metrics.counter("pgfanout_redis_disconnects_total",
                                  "Redis connections lost, refused or timed out",
                                  {{"target", options_.name}})),
      metrics_(metrics) {}

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
  resolver_.cancel();
  close();
}

void RedisConnection::connect() {
  if (state_ == State::Stopped) return;
  state_ = State::Connecting;
  ++generation_;
  const RedisUrl& url = options_.url;
  boost::system::error_code ec;
  if (url.is_unix() || (asio::ip::make_address(url.host, ec), !ec)) {
    connect_to(url.host);
    return;
  }
  // hiredis resolves names with a blocking getaddrinfo(): resolve here, asynchronously, every
  // time (a failover may move the name), and hand hiredis an address literal.
  auto gen = generation_;
  resolver_.async_resolve(
      url.host, std::to_string(url.port),
      [this, gen](boost::system::error_code rec, asio::ip::tcp::resolver::results_type results) {
        if (gen != generation_ || state_ != State::Connecting) return;
        if (rec || results.empty()) {
          lost("cannot resolve " + options_.url.host + ": " + rec.message());
          return;
        }
        connect_to(results.begin()->endpoint().address().to_string());
      });
  arm_connect_timer();
}

void RedisConnection::arm_connect_timer() {
  auto gen = generation_;
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([this, gen](boost::system::error_code ec) {
    if (ec || gen != generation_ || (state_ != State::Connecting && state_ != State::Handshake)) {
      return;
    }
    lost("connection attempt timed out after " + std::to_string(options_.connect_timeout.count()) +
         " ms");
  });
}

void RedisConnection::connect_to(const std::string& address) {
  const RedisUrl& url = options_.url;
  redisAsyncContext* ac = url.is_unix() ? redisAsyncConnectUnix(url.socket_path.c_str())
                                        : redisAsyncConnect(address.c_str(), url.port);
  if (ac == nullptr) {
    lost("out of memory");
    return;
  }
  if (ac->err != 0) {
    std::string why = ac->errstr;
    redisAsyncFree(ac);
    lost(why);
    return;
  }
  adapter_ = RedisAsioAdapter::attach(io_, ac);
  if (!adapter_) {
    redisAsyncFree(ac);
    lost("cannot watch the Redis socket");
    return;
  }
  ac_ = ac;
  ac->data = this;
  redisAsyncSetConnectCallback(ac, on_connect);  // after attach: it asks for the first write
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  arm_connect_timer();
}

void RedisConnection::on_connect(const redisAsyncContext* c, int status) {
  auto* self = static_cast<RedisConnection*>(c->data);
  if (self == nullptr || c != self->ac_) return;
  if (status != REDIS_OK) {
    self->ac_ = nullptr;  // hiredis frees the context after this callback
    self->lost(c->errstr);
    return;
  }
  self->handshake();
}

void RedisConnection::on_disconnect(const redisAsyncContext* c, int status) {
  auto* self = static_cast<RedisConnection*>(c->data);
  if (self == nullptr || c != self->ac_) return;
  self->ac_ = nullptr;  // being freed by hiredis
  self->lost(status == REDIS_OK ? "connection closed" : c->errstr);
}

void RedisConnection::handshake() {
  state_ = State::Handshake;
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
      lost(*error);
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
  auto* p = new Pending{this, generation_, std::move(handler)};
  if (redisAsyncCommandArgv(ac_, on_reply, p, static_cast<int>(argc), argv, lens) != REDIS_OK) {
    // Only when the context is already disconnecting: the reply will never come.
    std::unique_ptr<Pending> owned(p);
    owned->handler(nullptr);
    return;
  }
  if (in_flight_++ == 0) last_reply_ = Clock::now();
}

void RedisConnection::on_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<Pending> p(static_cast<Pending*>(privdata));
  RedisConnection* self = p->self;
  if (p->generation == self->generation_) {
    if (self->in_flight_ > 0) --self->in_flight_;
    if (reply != nullptr) self->last_reply_ = Clock::now();
  }
  p->handler(static_cast<redisReply*>(reply));
}

void RedisConnection::reconnect(const std::string& why) {
  if (state_ == State::Stopped || state_ == State::Idle) return;
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
  if (ac_ != nullptr) {
    redisAsyncContext* ac = ac_;
    ac_ = nullptr;
    // Pending handlers run with nullptr (now, or right after the current hiredis callback).
    redisAsyncFree(ac);
  }
  adapter_.reset();
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
  reconnect_timer_.async_wait([this, gen](boost::system::error_code ec) {
    if (ec || gen != generation_ || state_ != State::Idle) return;
    connect();
  });
}

void RedisConnection::arm_watchdog() {
  auto period =
      std::min<std::chrono::milliseconds>(options_.command_timeout / 4, std::chrono::seconds(1));
  watchdog_.expires_after(period);
  watchdog_.async_wait([this](boost::system::error_code ec) {
    if (ec || state_ == State::Stopped) return;
    if ((state_ == State::Ready || state_ == State::Handshake) && in_flight_ > 0 &&
        Clock::now() - last_reply_ > options_.command_timeout) {
      lost("no reply for " + std::to_string(options_.command_timeout.count()) + " ms");
    }
    arm_watchdog();
  });
}

}  // namespace pgfanout::redis
