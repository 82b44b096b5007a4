// A blocking hiredis client for the Redis integration tests: set-up and checks only.
#pragma once

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/TestSupport.hpp"

namespace pgfanout::test {

class RedisTestClient {
 public:
  explicit RedisTestClient(int port, std::string host = "127.0.0.1")
      : host_(std::move(host)), port_(port) {
    connect();
  }
  ~RedisTestClient() {
    if (c_ != nullptr) redisFree(c_);
  }
  RedisTestClient(const RedisTestClient&) = delete;
  RedisTestClient& operator=(const RedisTestClient&) = delete;

  // Runs a command; returns the reply as text (integers as digits, nil as "(nil)", errors as
  // "ERR ...", arrays as the number of elements).
  std::string cmd(const std::vector<std::string>& args) {
    if (c_ == nullptr && !connect()) return "(no connection)";
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (r == nullptr) {
      redisFree(c_);
      c_ = nullptr;
      return "(no connection)";
    }
    std::string out;
    switch (r->type) {
      case REDIS_REPLY_INTEGER:
        out = std::to_string(r->integer);
        break;
      case REDIS_REPLY_NIL:
        out = "(nil)";
        break;
      case REDIS_REPLY_ARRAY:
        out = std::to_string(r->elements);
        break;
      default:
        out.assign(r->str, r->len);
    }
    freeReplyObject(r);
    return out;
  }
  bool exists(const std::string& key) { return cmd({"EXISTS", key}) == "1"; }
  void set(const std::string& key, const std::string& value = "v") { cmd({"SET", key, value}); }
  long long dbsize() { return std::atoll(cmd({"DBSIZE"}).c_str()); }

 private:
  bool connect() {
    timeval tv{1, 0};
    c_ = redisConnectWithTimeout(host_.c_str(), port_, tv);
    if (c_ == nullptr || c_->err != 0) {
      if (c_ != nullptr) redisFree(c_);
      c_ = nullptr;
      return false;
    }
    return true;
  }
  std::string host_;
  int port_;
  redisContext* c_ = nullptr;
};

inline int harness_redis_port() {
  return std::atoi(harness_env("PGFANOUT_TEST_REDIS_PORT").c_str());
}

// A private redis-server on a free port that a test may stop and start again.
class OwnRedisServer {
 public:
  // `extra_args` are appended to redis-server's command line (e.g. a --tls-port and its files).
  explicit OwnRedisServer(std::vector<std::string> extra_args = {})
      : extra_args_(std::move(extra_args)) {
    binary_ = harness_env("PGFANOUT_TEST_REDIS_SERVER");
    port_ = free_port();
    start();
  }
  ~OwnRedisServer() { stop(); }
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

  // A free port below the kernel's ephemeral range (32768 and up): the server is restarted on
  // the same port, and while it is down an outgoing connection must not be able to take it.
  static int free_port() {
    static std::mt19937 rng(std::random_device{}());
    for (int attempt = 0; attempt < 200; ++attempt) {
      int port = 20000 + static_cast<int>(rng() % 12000);
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<std::uint16_t>(port));
      bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
      if (ok) return port;
    }
    ADD_FAILURE() << "no free port below the ephemeral range";
    return 0;
  }

  // Starts (again) on the same port.
  void start() {
    pid_ = fork();
    if (pid_ == 0) {
      std::string port = std::to_string(port_);
      std::vector<const char*> argv{
          binary_.c_str(), "--port", port.c_str(), "--bind",   "127.0.0.1", "--save", "",
          "--appendonly",  "no",     "--logfile",  "/dev/null"};
      for (const auto& a : extra_args_) argv.push_back(a.c_str());
      argv.push_back(nullptr);
      execv(binary_.c_str(), const_cast<char* const*>(argv.data()));
      _exit(127);
    }
    ASSERT_TRUE(wait_until([&] {
      RedisTestClient c(port_);
      return c.cmd({"PING"}) == "PONG";
    }));
  }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::vector<std::string> extra_args_;
  std::string binary_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace pgfanout::test
