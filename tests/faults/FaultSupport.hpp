// Shared pieces of the fault-injection scenarios: the short/long switch, /metrics parsing, the
// figures every scenario reports, and a cache-aside load (readers fill `user:{id}` in Redis from
// PostgreSQL, writers update rows) whose end state can be checked against the database.
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "integration/redis_test_client.hpp"
#include "integration/routed_redis_client.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::test {

// PGFANOUT_LONG_TESTS=1 selects the long form of each scenario.
inline bool long_tests() {
  const char* v = std::getenv("PGFANOUT_LONG_TESTS");
  return v != nullptr && std::string(v) == "1";
}

// The seed of the randomized loads: PGFANOUT_SEED when set (a decimal number), else 1, so that
// `make test` is repeatable and a failure seen with another seed can be run again with it. It
// fixes what each load thread picks (rows, fill delays), not how the threads interleave.
inline unsigned test_seed() {
  const char* v = std::getenv("PGFANOUT_SEED");
  if (v == nullptr || *v == '\0') return 1;
  char* end = nullptr;
  unsigned long n = std::strtoul(v, &end, 10);
  if (*end != '\0') {
    ADD_FAILURE() << "PGFANOUT_SEED=" << v << " is not a decimal number";
    return 1;
  }
  return static_cast<unsigned>(n);
}

// The value of one series in a Prometheus text exposition, or -1 when it is absent.
inline double metric_value(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}
inline double daemon_metric(int port, const std::string& series) {
  auto r = http_get(port, "/metrics");
  return r.status == 200 ? metric_value(r.body, series) : -1;
}

// Installs the config's watches, runs the daemon on it and waits until it is ready and connected
// to its Redis target. `port` is its HTTP port; 0 (with test failures) when it did not come up.
struct RunningDaemon {
  std::unique_ptr<DaemonProcess> process;
  int port = 0;
};
inline RunningDaemon install_and_run(const std::string& config) {
  RunningDaemon d;
  auto [code, out] = run_pgfanout({"install", "--config", config});
  EXPECT_EQ(code, 0) << out;
  if (code != 0) return d;
  d.process = std::make_unique<DaemonProcess>(std::vector<std::string>{"run", "--config", config});
  EXPECT_TRUE(d.process->wait_for_output("ready")) << d.process->output();
  EXPECT_TRUE(d.process->wait_for_output("Redis target default")) << d.process->output();
  d.port = d.process->http_port();
  return d;
}

// What a scenario reports: recorded as test properties and printed as one line. A figure a
// scenario does not measure stays -1.
struct Figures {
  std::string scenario;
  long long written = 0;
  long long acted = 0;
  long long lost = 0;
  long long duplicates = -1;  // -1: not measured by this scenario
  long long stale = -1;
  long long recover_ms = -1;
  std::map<std::string, long long> extra;

  void report() const {
    ::testing::Test::RecordProperty("written", std::to_string(written));
    ::testing::Test::RecordProperty("acted", std::to_string(acted));
    ::testing::Test::RecordProperty("lost", std::to_string(lost));
    ::testing::Test::RecordProperty("duplicates", std::to_string(duplicates));
    ::testing::Test::RecordProperty("stale", std::to_string(stale));
    ::testing::Test::RecordProperty("recover_ms", std::to_string(recover_ms));
    std::string more;
    for (const auto& [k, v] : extra) {
      ::testing::Test::RecordProperty(k, std::to_string(v));
      more += " " + k + "=" + std::to_string(v);
    }
    std::printf(
        "FAULT %s: written=%lld acted=%lld lost=%lld duplicates=%lld stale=%lld "
        "recover_ms=%lld%s\n",
        scenario.c_str(), written, acted, lost, duplicates, stale, recover_ms, more.c_str());
    std::fflush(stdout);
  }
};

// A libpq connection for load threads: errors are tolerated (the server may be restarting),
// the connection is re-opened on the next call.
class LoadConn {
 public:
  explicit LoadConn(std::string dsn) : dsn_(std::move(dsn)) {}
  ~LoadConn() {
    if (c_ != nullptr) PQfinish(c_);
  }
  LoadConn(const LoadConn&) = delete;
  LoadConn& operator=(const LoadConn&) = delete;

  // Runs `sql` with `params`; returns the first value ("" for none), or nullopt on error.
  std::optional<std::string> run(const std::string& sql, const std::vector<std::string>& params) {
    if (c_ == nullptr || PQstatus(c_) != CONNECTION_OK) {
      if (c_ != nullptr) PQfinish(c_);
      c_ = PQconnectdb(dsn_.c_str());
      if (PQstatus(c_) != CONNECTION_OK) {
        PQfinish(c_);
        c_ = nullptr;
        return std::nullopt;
      }
    }
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PGresult* r = PQexecParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
    std::optional<std::string> out;
    auto st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK) {
      out = PQntuples(r) > 0 ? std::string(PQgetvalue(r, 0, 0)) : std::string();
    } else if (st == PGRES_COMMAND_OK) {
      out = std::string(PQcmdTuples(r));
    }
    PQclear(r);
    return out;
  }

 private:
  std::string dsn_;
  PGconn* c_ = nullptr;
};

// Rows users(id, v) with v counting the updates of the row, so sum(v) is the number of
// committed writes (each one UPDATE and one notification).
class CacheLoad {
 public:
  // `cluster`: the Redis at redis_host:redis_port is a node of a Redis Cluster (keys are read
  // and filled on the node of their slot).
  CacheLoad(std::string dsn, int redis_port, std::string prefix, int rows,
            std::string redis_host = "127.0.0.1", bool cluster = false)
      : dsn_(std::move(dsn)),
        redis_port_(redis_port),
        redis_host_(std::move(redis_host)),
        cluster_(cluster),
        prefix_(std::move(prefix)),
        rows_(rows) {}
  ~CacheLoad() { stop(); }

  static std::string table_sql(int rows) {
    return "CREATE TABLE public.users (id int PRIMARY KEY, v bigint NOT NULL DEFAULT 0);"
           "INSERT INTO public.users (id) SELECT g FROM generate_series(1, " +
           std::to_string(rows) + ") g";
  }
  std::string key(int id) const { return prefix_ + "user:" + std::to_string(id); }

  // Readers: GET, on a miss SELECT and (after up to `fill_delay_us`, the time a real cache fill
  // takes to serialize) SET. Writers: UPDATE a random row.
  // Each thread's random sequence derives from test_seed(), which is printed (seed 1 gives the
  // sequences of the fixed seeds used before it could be chosen).
  void start(int readers, int writers, int fill_delay_us = 2000) {
    running_ = true;
    seed_ = test_seed();
    std::printf("cache load seed %u (PGFANOUT_SEED=%u repeats it)\n", seed_, seed_);
    std::fflush(stdout);
    ::testing::Test::RecordProperty("seed", std::to_string(seed_));
    for (int r = 0; r < readers; ++r) {
      threads_.emplace_back([this, r, fill_delay_us] {
        LoadConn pg(dsn_);
        RoutedRedisClient redis(redis_host_, redis_port_, cluster_);
        std::mt19937 rng((seed_ - 1) * 2654435761u + static_cast<unsigned>(r * 7919 + 1));
        std::uniform_int_distribution<int> pick(1, rows_), delay(0, fill_delay_us);
        while (running_) {
          std::string k = key(pick(rng));
          if (redis.cmd({"GET", k}) != "(nil)") {
            ++hits_;
            continue;
          }
          auto v = pg.run("SELECT v::text FROM public.users WHERE id = $1",
                          {k.substr(k.rfind(':') + 1)});
          if (!v) continue;
          std::this_thread::sleep_for(std::chrono::microseconds(delay(rng)));
          redis.cmd({"SET", k, *v});
          ++fills_;
        }
      });
    }
    for (int w = 0; w < writers; ++w) {
      threads_.emplace_back([this, w] {
        LoadConn pg(dsn_);
        std::mt19937 rng((seed_ - 1) * 2654435761u + static_cast<unsigned>(w * 104729 + 3));
        std::uniform_int_distribution<int> pick(1, rows_);
        while (running_) {
          auto n = pg.run("UPDATE public.users SET v = v + 1 WHERE id = $1",
                          {std::to_string(pick(rng))});
          if (!n) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      });
    }
  }
  void stop() {
    running_ = false;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  // Committed writes so far.
  long long written() {
    BlockingPg s(dsn_);
    return std::atoll(s.value("SELECT sum(v)::text FROM public.users").value_or("0").c_str());
  }
  // Cached values that differ from the database.
  long long stale() {
    BlockingPg s(dsn_);
    RoutedRedisClient redis(redis_host_, redis_port_, cluster_);
    long long n = 0;
    for (int id = 1; id <= rows_; ++id) {
      auto cached = redis.cmd({"GET", key(id)});
      if (cached == "(nil)") continue;
      auto db = s.value("SELECT v::text FROM public.users WHERE id = $1", {std::to_string(id)});
      if (!db || *db != cached) ++n;
    }
    return n;
  }
  long long fills() const { return fills_; }
  unsigned seed() const { return seed_; }
  long long hits() const { return hits_; }

 private:
  std::string dsn_;
  int redis_port_;
  std::string redis_host_;
  bool cluster_;
  std::string prefix_;
  int rows_;
  unsigned seed_ = 1;
  std::atomic<bool> running_{false};
  std::atomic<long long> fills_{0}, hits_{0};
  std::vector<std::thread> threads_;
};

}  // namespace pgfanout::test
