// RedisConnection: one connection to one Redis target, kept alive.
//
// It connects (TCP, Unix socket, or TLS for rediss://; host names resolved asynchronously on every
// attempt, each address tried in turn), logs in (AUTH with password or ACL user + password),
// SELECTs the database and names itself, then reports on_ready. The daemon owns the transport: an
// Asio socket (or an OpenSSL stream over one); hiredis only formats commands
// (redisFormatCommandArgv) and parses replies (RedisReplyReader). Commands sent with command() are
// pipelined: appended to a write buffer that goes out in one write while the previous one is on
// the wire; replies are matched to handlers in order. Each handler is called exactly once, with
// the reply (freed after the handler returns), or with nullptr when the connection was lost
// before the reply came (the caller decides whether to resend). On loss, a refused login or TLS
// handshake, a connect that takes longer than connect_timeout or a command without reply for
// command_timeout, it closes the connection, reports on_down and reconnects with backoff
// (reconnect_min doubling to reconnect_max, with jitter). The backoff restarts only after a command
// succeeded, so a server that accepts connections but refuses work is not hammered.
//
// TLS always verifies the server: its certificate against the CA file (or the system's store) and
// its name (tls.server_name, default the URL's host, also sent as SNI). The CA file and client
// certificate are read again on every connect. Failed connects are counted by reason in
// pgfanout_redis_connect_errors_total{target,reason} (resolve, connect, tls, login, timeout).
//
// All calls and callbacks run on the io_context's thread. Pending I/O keeps only the current
// connection's own state alive, never this object; still, stop() (or destroy) it before the
// io_context goes away.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "redis/RedisUrl.hpp"

struct redisReply;

namespace pgfanout {
class Metrics;
class Gauge;
class Counter;
}  // namespace pgfanout

namespace pgfanout::redis {

class RedisConnection {
 public:
  struct Options {
    std::string name;  // the target's name, for logs and metrics
    RedisUrl url;
    std::chrono::milliseconds connect_timeout{5'000};
    std::chrono::milliseconds command_timeout{10'000};
    std::chrono::milliseconds reconnect_min{100};
    std::chrono::milliseconds reconnect_max{30'000};
    // One node of a cluster target: pgfanout_redis_connected{target} is then the target's
    // (redis/RedisNodes sets it), not this connection's.
    bool cluster_node = false;
  };
  struct Callbacks {
    std::function<void()> on_ready;
    std::function<void(const std::string& why)> on_down;  // only after on_ready
  };
  // Called once: with the reply, or nullptr when the connection went away first.
  using ReplyHandler = std::function<void(redisReply* reply)>;

  RedisConnection(boost::asio::io_context& io, Metrics& metrics, Options options,
                  Callbacks callbacks);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  void start();
  // Closes the connection (pending handlers get nullptr) and stops reconnecting.
  void stop();
  bool ready() const { return state_ == State::Ready; }
  std::size_t in_flight() const { return in_flight_; }
  const Options& options() const { return options_; }

  // Sends one command; requires ready(). Arguments are copied before this returns.
  void command(std::size_t argc, const char** argv, const std::size_t* lens, ReplyHandler handler);
  // Closes and reconnects (e.g. after READONLY: the server became a replica).
  void reconnect(const std::string& why);
  // Tells the connection a command worked, so the reconnect backoff starts from scratch again.
  void note_success() { attempts_ = 0; }

 private:
  enum class State { Idle, Connecting, Handshake, Ready, Stopped };
  // Why a connect attempt failed: the reason label of pgfanout_redis_connect_errors_total.
  enum class Failure { Resolve, Connect, Tls, Login, Timeout };
  static constexpr std::size_t kFailures = 5;
  // One connection attempt: its socket (or TLS stream), buffers and the FIFO of reply handlers.
  // Shared with its pending I/O; detached (owner = nullptr) when the connection is closed.
  class Link;

  void connect();
  bool make_socket(const std::shared_ptr<Link>& link);
  void connect_tcp(const std::shared_ptr<Link>& link);
  void on_transport(const std::shared_ptr<Link>& link);
  void arm_connect_timer();
  void handshake();
  void send(std::size_t argc, const char** argv, const std::size_t* lens, ReplyHandler handler);
  void io_failed(const std::string& what, const boost::system::error_code& ec);
  void fail(Failure reason, const std::string& why);
  void lost(const std::string& why);
  void close();
  void schedule_reconnect();
  void arm_watchdog();

  boost::asio::io_context& io_;
  Options options_;
  Callbacks callbacks_;
  State state_ = State::Idle;
  std::shared_ptr<Link> link_;
  boost::asio::steady_timer reconnect_timer_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer watchdog_;
  std::uint64_t generation_ = 0;
  int attempts_ = 0;
  std::size_t in_flight_ = 0;
  std::chrono::steady_clock::time_point last_reply_{};
  std::mt19937 rng_;
  std::unique_ptr<Gauge> own_connected_;  // a cluster node's, in no family
  Gauge& connected_;
  Counter& reconnects_;
  std::array<Counter*, kFailures> connect_errors_{};
  Metrics& metrics_;
};

}  // namespace pgfanout::redis
