// RedisConnection: one hiredis async connection to one Redis target, kept alive.
//
// It connects (TCP or Unix socket; host names resolved asynchronously on every attempt), logs in
// (AUTH with password or ACL user + password), SELECTs the database and names itself, then reports
// on_ready. Commands sent with command() are pipelined by hiredis (written together when the socket
// is writable); each handler is called exactly once, with the reply, or with nullptr when the
// connection was lost before the reply came (the caller decides whether to resend). On loss, a
// refused login, a connect that takes longer than connect_timeout or a command without reply for
// command_timeout, it closes the connection, reports on_down and reconnects with backoff
// (reconnect_min doubling to reconnect_max, with jitter). The backoff restarts only after a command
// succeeded, so a server that accepts connections but refuses work is not hammered.
//
// All calls and callbacks run on the io_context's thread; the object must outlive the
// io_context's run() or be stopped before.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "redis/RedisUrl.hpp"

struct redisAsyncContext;
struct redisReply;

namespace pgfanout {
class Metrics;
class Gauge;
class Counter;
}  // namespace pgfanout

namespace pgfanout::redis {

class RedisAsioAdapter;

class RedisConnection {
 public:
  struct Options {
    std::string name;  // the target's name, for logs and metrics
    RedisUrl url;
    std::chrono::milliseconds connect_timeout{5'000};
    std::chrono::milliseconds command_timeout{10'000};
    std::chrono::milliseconds reconnect_min{100};
    std::chrono::milliseconds reconnect_max{30'000};
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
  struct Pending;

  void connect();
  void connect_to(const std::string& address);
  void arm_connect_timer();
  void handshake();
  void send(std::size_t argc, const char** argv, const std::size_t* lens, ReplyHandler handler);
  void lost(const std::string& why);
  void close();
  void schedule_reconnect();
  void arm_watchdog();
  static void on_connect(const redisAsyncContext* c, int status);
  static void on_disconnect(const redisAsyncContext* c, int status);
  static void on_reply(redisAsyncContext* c, void* reply, void* privdata);

  boost::asio::io_context& io_;
  Options options_;
  Callbacks callbacks_;
  State state_ = State::Idle;
  redisAsyncContext* ac_ = nullptr;
  std::shared_ptr<RedisAsioAdapter> adapter_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer reconnect_timer_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer watchdog_;
  std::uint64_t generation_ = 0;
  int attempts_ = 0;
  std::size_t in_flight_ = 0;
  std::chrono::steady_clock::time_point last_reply_{};
  std::mt19937 rng_;
  Gauge& connected_;
  Counter& reconnects_;
  Metrics& metrics_;
};

}  // namespace pgfanout::redis
