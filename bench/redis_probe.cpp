// Measuring helper for bench/redis_evict.sh and bench/wal_evict.sh (not part of the daemon).
// Modes:
//
//   redis_probe listen-ceiling DSN CHANNEL N
//       The raw ceiling: a minimal libpq LISTEN consumer. Fires N distinct notifications in one
//       transaction on a second connection and prints how fast they are all received.
//   redis_probe burst DSN CHANNEL N REDIS_PORT [notify|emit]
//       Fires N events {"id": 1..N} in one transaction (pg_notify, or pgfanout.emit for the WAL
//       source) and waits until the Redis database is empty (DBSIZE polled every millisecond):
//       the daemon evicting N pre-filled keys.
//   redis_probe burst-update DSN TABLE N REDIS_PORT
//       The same wait after `UPDATE TABLE SET v = v + 1` (N rows, one transaction): the WAL
//       source's row changes evicting N pre-filled keys.
//   redis_probe wal-ceiling DSN SLOT PUBLICATION TABLE N PAUSE_US
//       The WAL source's ceiling: a minimal pgoutput consumer (protocol 1) streaming from SLOT
//       while `UPDATE TABLE SET v = v + 1` (N rows, one transaction) runs on a second connection,
//       as the daemon streams; prints how long after the commit returned the N row changes and
//       the commit have all been received. It only counts the messages, and pauses PAUSE_US
//       each time it has read all that had arrived: how fast the walsender delivers depends on
//       it (a reader that wakes for every message, or one so slow that the socket fills, makes
//       the walsender spend more system calls per message).
//   redis_probe steady-listen DSN CHANNEL RATE SECONDS
//       The latency ceiling: the same paced commits, received by a minimal libpq consumer.
//   redis_probe steady DSN CHANNEL REDIS_PORT RATE SECONDS PREFIX [notify|emit]
//       RATE single-row commits per second (each one pg_notify, or pgfanout.emit, with a new
//       id), with a Redis keyspace-event subscriber timestamping each key's UNLINK/DEL:
//       commit-to-key-gone latency.
//
// Every mode prints `key=value` lines for the script to parse.
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

PGconn* pg_connect(const char* dsn) {
  PGconn* c = PQconnectdb(dsn);
  if (PQstatus(c) != CONNECTION_OK) {
    std::fprintf(stderr, "cannot connect: %s", PQerrorMessage(c));
    std::exit(1);
  }
  return c;
}

// Waits until fd is readable; false after `seconds` without.
bool wait_readable(int fd, int seconds) {
  fd_set set;
  FD_ZERO(&set);
  FD_SET(fd, &set);
  timeval tv{seconds, 0};
  return select(fd + 1, &set, nullptr, nullptr, &tv) > 0;
}

void pg_exec(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
    std::fprintf(stderr, "%s: %s", sql.c_str(), PQresultErrorMessage(r));
    std::exit(1);
  }
  PQclear(r);
}

// How an event is sent: NOTIFY, or a transactional logical message for the WAL source.
std::string send_function(const std::string& via) {
  if (via == "notify") return "pg_notify";
  if (via == "emit") return "pgfanout.emit";
  std::fprintf(stderr, "unknown sender %s (notify or emit)\n", via.c_str());
  std::exit(2);
}

// One transaction, N distinct payloads (PostgreSQL folds identical ones within a transaction).
std::string burst_sql(const std::string& channel, long n, const std::string& via = "notify") {
  return "SELECT count(" + send_function(via) + "('" + channel +
         "', json_build_object('id', g)::text)) FROM generate_series(1, " + std::to_string(n) +
         ") g";
}

redisContext* redis_connect(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (c == nullptr || c->err != 0) {
    std::fprintf(stderr, "cannot connect to Redis on %d\n", port);
    std::exit(1);
  }
  return c;
}

long long redis_int(redisContext* c, const char* cmd) {
  auto* r = static_cast<redisReply*>(redisCommand(c, cmd));
  long long v = r != nullptr && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  if (r != nullptr) freeReplyObject(r);
  return v;
}

int listen_ceiling(const char* dsn, const std::string& channel, long n) {
  PGconn* listener = pg_connect(dsn);
  PGconn* sender = pg_connect(dsn);
  pg_exec(listener, "LISTEN \"" + channel + "\"");
  auto t0 = Clock::now();
  pg_exec(sender, burst_sql(channel, n));
  auto committed = Clock::now();
  long received = 0;
  Clock::time_point first{}, last{};
  int fd = PQsocket(listener);
  while (received < n) {
    if (!wait_readable(fd, 10)) break;
    PQconsumeInput(listener);
    while (PGnotify* note = PQnotifies(listener)) {
      if (received++ == 0) first = Clock::now();
      PQfreemem(note);
    }
    last = Clock::now();
  }
  std::printf("received=%ld\n", received);
  std::printf("commit_seconds=%.4f\n", seconds(committed - t0));
  std::printf("after_commit_seconds=%.4f\n", seconds(last - committed));
  std::printf("first_to_last_seconds=%.4f\n", seconds(last - first));
  std::printf("rate_after_commit=%.0f\n",
              static_cast<double>(received) / seconds(last - committed));
  std::printf("rate_total=%.0f\n", static_cast<double>(received) / seconds(last - t0));
  std::printf("rate_first_to_last=%.0f\n", static_cast<double>(received) / seconds(last - first));
  PQfinish(listener);
  PQfinish(sender);
  return received == n ? 0 : 1;
}

// Runs `sql` (one transaction that makes n evictions) and waits until Redis is empty.
int burst(const char* dsn, const std::string& sql, long n, int port) {
  PGconn* sender = pg_connect(dsn);
  redisContext* redis = redis_connect(port);
  long long before = redis_int(redis, "DBSIZE");
  auto t0 = Clock::now();
  pg_exec(sender, sql);
  auto committed = Clock::now();
  long long left = before;
  auto deadline = committed + std::chrono::seconds(120);
  Clock::time_point first_gone{};
  while ((left = redis_int(redis, "DBSIZE")) > 0 && Clock::now() < deadline) {
    if (left < before && first_gone == Clock::time_point{}) first_gone = Clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto gone = Clock::now();
  if (first_gone == Clock::time_point{}) first_gone = committed;
  std::printf("keys_before=%lld\nkeys_left=%lld\n", before, left);
  std::printf("commit_seconds=%.4f\n", seconds(committed - t0));
  std::printf("after_commit_seconds=%.4f\n", seconds(gone - committed));
  std::printf("total_seconds=%.4f\n", seconds(gone - t0));
  std::printf("rate_after_commit=%.0f\n", static_cast<double>(n) / seconds(gone - committed));
  std::printf("rate_total=%.0f\n", static_cast<double>(n) / seconds(gone - t0));
  // From the first key seen gone to the last: the eviction rate once notifications flow
  // (the keys of the first poll interval are counted in, so this slightly flatters).
  std::printf("first_to_last_seconds=%.4f\n", seconds(gone - first_gone));
  std::printf("rate_first_to_last=%.0f\n", static_cast<double>(n) / seconds(gone - first_gone));
  PQfinish(sender);
  redisFree(redis);
  return left == 0 ? 0 : 1;
}

int steady(const char* dsn, const std::string& channel, int port, int rate, int secs,
           const std::string& prefix, const std::string& via) {
  const std::string function = send_function(via);
  long n = static_cast<long>(rate) * secs;
  redisContext* setup = redis_connect(port);
  freeReplyObject(redisCommand(setup, "CONFIG SET notify-keyspace-events Eg"));
  // Pre-fill the keys the commits will evict.
  for (long i = 1; i <= n; ++i) redisAppendCommand(setup, "SET %s%ld v", prefix.c_str(), i);
  for (long i = 1; i <= n; ++i) {
    void* r = nullptr;
    redisGetReply(setup, &r);
    freeReplyObject(r);
  }
  std::vector<Clock::time_point> committed(n + 1), gone(n + 1);
  std::atomic<long> seen{0};
  std::atomic<bool> subscribed{false};
  std::thread subscriber([&] {
    redisContext* sub = redis_connect(port);
    redisAppendCommand(sub, "SUBSCRIBE __keyevent@0__:unlink __keyevent@0__:del");
    for (int i = 0; i < 2; ++i) {
      void* r = nullptr;
      redisGetReply(sub, &r);
      freeReplyObject(r);
    }
    subscribed = true;
    timeval tv{5, 0};
    redisSetTimeout(sub, tv);
    while (seen < n) {
      void* r = nullptr;
      if (redisGetReply(sub, &r) != REDIS_OK) break;
      auto now = Clock::now();
      auto* m = static_cast<redisReply*>(r);
      if (m->type == REDIS_REPLY_ARRAY && m->elements == 3) {
        std::string key(m->element[2]->str, m->element[2]->len);
        if (key.starts_with(prefix)) {
          long id = std::atol(key.c_str() + prefix.size());
          if (id >= 1 && id <= n && gone[id] == Clock::time_point{}) {
            gone[id] = now;
            ++seen;
          }
        }
      }
      freeReplyObject(r);
    }
    redisFree(sub);
  });
  while (!subscribed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  PGconn* sender = pg_connect(dsn);
  auto start = Clock::now();
  auto step = std::chrono::nanoseconds(1'000'000'000LL / rate);
  std::string sql;
  for (long i = 1; i <= n; ++i) {
    std::this_thread::sleep_until(start + step * (i - 1));
    sql = "SELECT " + function + "('" + channel + "', '{\"id\": " + std::to_string(i) + "}'::text)";
    pg_exec(sender, sql);  // autocommit: one single-row commit
    committed[i] = Clock::now();
  }
  auto sent = Clock::now();
  subscriber.join();
  std::vector<double> lat;
  long negative = 0;
  for (long i = 1; i <= n; ++i) {
    if (gone[i] == Clock::time_point{}) continue;
    double ms = std::chrono::duration<double, std::milli>(gone[i] - committed[i]).count();
    if (ms < 0) ++negative;
    lat.push_back(std::max(ms, 0.0));
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? -1.0
                       : lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * lat.size()))];
  };
  std::printf("commits=%ld\nevicted=%zu\n", n, lat.size());
  std::printf("achieved_rate=%.0f\n", static_cast<double>(n) / seconds(sent - start));
  std::printf("gone_before_commit_returned=%ld\n", negative);
  std::printf("p50_ms=%.3f\np90_ms=%.3f\np99_ms=%.3f\nmax_ms=%.3f\n", pct(0.5), pct(0.9), pct(0.99),
              lat.empty() ? -1.0 : lat.back());
  PQfinish(sender);
  redisFree(setup);
  return static_cast<long>(lat.size()) == n ? 0 : 1;
}

// Streams SLOT (pgoutput, protocol 1) from before `UPDATE TABLE SET v = v + 1` until the N row
// changes and the transaction's commit have been received; nothing but counting is done.
int wal_ceiling(const std::string& dsn, const std::string& slot, const std::string& publication,
                const std::string& table, long n, int pause_us) {
  // It answers no keepalive: no timeout for this walsender, however long the run.
  PGconn* stream =
      pg_connect((dsn + " replication=database options='-c wal_sender_timeout=0'").c_str());
  PGresult* r = PQexec(
      stream, ("START_REPLICATION SLOT \"" + slot +
               "\" LOGICAL 0/0 (proto_version '1', publication_names '\"" + publication + "\"')")
                  .c_str());
  if (PQresultStatus(r) != PGRES_COPY_BOTH) {
    std::fprintf(stderr, "START_REPLICATION: %s", PQerrorMessage(stream));
    return 1;
  }
  PQclear(r);
  long updates = 0;
  Clock::time_point first{}, last{};
  std::atomic<bool> ok{false};
  std::thread receiver([&] {
    // Drain what has arrived, pause (a consumer doing work reads larger batches), then wait.
    const int fd = PQsocket(stream);
    for (;;) {
      char* buf = nullptr;
      int len = PQgetCopyData(stream, &buf, 1);
      if (len == 0) {
        if (pause_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
        if (!wait_readable(fd, 30) || !PQconsumeInput(stream)) return;
        continue;
      }
      if (len < 0) return;
      // XLogData: 'w', three 8-byte fields, then the pgoutput message, its type first.
      char type = buf[0] == 'w' && len > 25 ? buf[25] : 0;
      PQfreemem(buf);
      if (type == 'U' && updates++ == 0) first = Clock::now();
      if (type == 'C' && updates >= n) {
        last = Clock::now();
        ok = true;
        return;
      }
    }
  });
  PGconn* writer = pg_connect(dsn.c_str());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto t0 = Clock::now();
  pg_exec(writer, "UPDATE " + table + " SET v = v + 1");
  auto committed = Clock::now();
  receiver.join();
  if (!ok) {
    std::fprintf(stderr, "the stream ended after %ld row changes: %s", updates,
                 PQerrorMessage(stream));
    return 1;
  }
  std::printf("received=%ld\n", updates);
  std::printf("commit_seconds=%.4f\n", seconds(committed - t0));
  // Received before the commit returned (a tiny N): counted as 1 ms, so the rate stays a number.
  const double after = std::max(seconds(last - committed), 0.001);
  std::printf("after_commit_seconds=%.4f\n", seconds(last - committed));
  std::printf("rate_after_commit=%.0f\n", static_cast<double>(n) / after);
  std::printf("first_to_last_seconds=%.4f\n", seconds(last - first));
  PQfinish(writer);
  PQfinish(stream);
  return 0;
}

// The raw latency ceiling for `steady`: the same paced commits, received by a minimal libpq
// LISTEN consumer instead of evicted by the daemon.
int steady_listen(const char* dsn, const std::string& channel, int rate, int secs) {
  long n = static_cast<long>(rate) * secs;
  std::vector<Clock::time_point> committed(n + 1), received(n + 1);
  std::atomic<long> seen{0};
  PGconn* listener = pg_connect(dsn);
  pg_exec(listener, "LISTEN \"" + channel + "\"");
  std::thread consumer([&] {
    int fd = PQsocket(listener);
    while (seen < n) {
      if (!wait_readable(fd, 5)) break;
      PQconsumeInput(listener);
      auto now = Clock::now();
      while (PGnotify* note = PQnotifies(listener)) {
        std::string payload = note->extra;
        auto at = payload.find(':');
        long id = at == std::string::npos ? 0 : std::atol(payload.c_str() + at + 1);
        if (id >= 1 && id <= n && received[id] == Clock::time_point{}) {
          received[id] = now;
          ++seen;
        }
        PQfreemem(note);
      }
    }
  });
  PGconn* sender = pg_connect(dsn);
  auto start = Clock::now();
  auto step = std::chrono::nanoseconds(1'000'000'000LL / rate);
  for (long i = 1; i <= n; ++i) {
    std::this_thread::sleep_until(start + step * (i - 1));
    pg_exec(sender, "SELECT pg_notify('" + channel + "', '{\"id\": " + std::to_string(i) + "}')");
    committed[i] = Clock::now();
  }
  consumer.join();
  std::vector<double> lat;
  for (long i = 1; i <= n; ++i) {
    if (received[i] == Clock::time_point{}) continue;
    lat.push_back(std::max(
        std::chrono::duration<double, std::milli>(received[i] - committed[i]).count(), 0.0));
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? -1.0
                       : lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * lat.size()))];
  };
  std::printf("received=%zu\np50_ms=%.3f\np90_ms=%.3f\np99_ms=%.3f\nmax_ms=%.3f\n", lat.size(),
              pct(0.5), pct(0.9), pct(0.99), lat.empty() ? -1.0 : lat.back());
  PQfinish(sender);
  PQfinish(listener);
  return static_cast<long>(lat.size()) == n ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "listen-ceiling" && argc == 5)
    return listen_ceiling(argv[2], argv[3], std::atol(argv[4]));
  if (mode == "burst" && (argc == 6 || argc == 7)) {
    long n = std::atol(argv[4]);
    return burst(argv[2], burst_sql(argv[3], n, argc == 7 ? argv[6] : "notify"), n,
                 std::atoi(argv[5]));
  }
  if (mode == "burst-update" && argc == 6) {
    return burst(argv[2], "UPDATE " + std::string(argv[3]) + " SET v = v + 1", std::atol(argv[4]),
                 std::atoi(argv[5]));
  }
  if (mode == "wal-ceiling" && argc == 8) {
    return wal_ceiling(argv[2], argv[3], argv[4], argv[5], std::atol(argv[6]), std::atoi(argv[7]));
  }
  if (mode == "steady-listen" && argc == 6) {
    return steady_listen(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]));
  }
  if (mode == "steady" && (argc == 8 || argc == 9)) {
    return steady(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]), std::atoi(argv[6]),
                  argv[7], argc == 9 ? argv[8] : "notify");
  }
  std::fprintf(stderr, "usage: see the comment at the top of bench/redis_probe.cpp\n");
  return 2;
}
