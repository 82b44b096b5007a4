// PgConnection against the real PostgreSQL the harness started: the query queue is bounded; a
// statement beyond the bound fails at once (its callback posted, not called inline) with a clear
// message and is counted, and the connection keeps working afterwards. A connection destroyed
// while its socket waits are pending, or by its own callback, leaves nothing behind that runs on
// freed memory (the handlers hold the connection's state only while they run). A burst of
// notifications is handed on in runs of a few milliseconds, with the loop free in between.
#include <memory>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "metrics/Metrics.hpp"
#include "pg/PgConnection.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::pg {
namespace {

using namespace std::chrono_literals;
using test::run_until;

struct QueueBound : ::testing::Test {
  void open(std::size_t limit) {
    conn = std::make_unique<PgConnection>(io, PgConnection::Handlers{}, limit, &refused);
    bool connected = false;
    std::string error = "no answer";
    conn->connect(test::test_dsn(), "", 5s, [&](const std::string& e) {
      error = e;
      connected = true;
    });
    ASSERT_TRUE(run_until(io, [&] { return connected; })) << "connect did not finish";
    ASSERT_EQ(error, "");
  }

  // Runs `sql` on the open connection and returns its first value, or "error: ..." .
  std::string value(const std::string& sql) {
    std::optional<std::string> got;
    conn->query(sql, {}, [&](PgResult&& r) {
      got = r.ok ? (r.rows.empty() || !r.at(0, 0) ? "(none)" : *r.at(0, 0)) : "error: " + r.error;
    });
    if (!run_until(io, [&] { return got.has_value(); })) return "no answer";
    return *got;
  }

  boost::asio::io_context io;
  Metrics metrics;
  Counter& refused =
      metrics.counter(kQueriesRefusedMetric, kQueriesRefusedHelp, {{"connection", "test"}});
  std::unique_ptr<PgConnection> conn;
};

TEST_F(QueueBound, AStatementBeyondTheBoundIsRefusedAndTheConnectionStillWorks) {
  open(5);
  int answered = 0, failed = 0;
  for (int i = 0; i < 5; ++i) {
    conn->query("SELECT pg_sleep(0.05), " + std::to_string(i), {}, [&](PgResult&& r) {
      ++answered;
      if (!r.ok) ++failed;
    });
  }
  EXPECT_EQ(conn->queued(), 5u);
  std::optional<PgResult> refusal;
  conn->query("SELECT 'beyond the bound'", {}, [&](PgResult&& r) { refusal = std::move(r); });
  EXPECT_FALSE(refusal.has_value()) << "the refusal must be posted, not called inline";
  EXPECT_EQ(conn->queued(), 5u);
  EXPECT_EQ(refused.value(), 1u);

  ASSERT_TRUE(run_until(io, [&] { return refusal.has_value() && answered == 5; }));
  EXPECT_FALSE(refusal->ok);
  EXPECT_NE(refusal->error.find("query queue full"), std::string::npos) << refusal->error;
  EXPECT_EQ(failed, 0);  // the queued statements ran as usual
  EXPECT_TRUE(conn->connected());
  EXPECT_EQ(value("SELECT 40 + 2"), "42");
  EXPECT_EQ(refused.value(), 1u);
}

TEST_F(QueueBound, TheDefaultBoundHoldsTenThousandStatements) {
  open(PgConnection::kDefaultMaxQueued);
  std::size_t ok = 0, refusals = 0;
  for (std::size_t i = 0; i < PgConnection::kDefaultMaxQueued + 3; ++i) {
    conn->query("SELECT 1", {}, [&](PgResult&& r) { ++(r.ok ? ok : refusals); });
  }
  EXPECT_EQ(conn->queued(), PgConnection::kDefaultMaxQueued);
  EXPECT_EQ(refused.value(), 3u);
  ASSERT_TRUE(run_until(
      io, [&] { return ok + refusals == PgConnection::kDefaultMaxQueued + 3; }, 60s));
  EXPECT_EQ(ok, PgConnection::kDefaultMaxQueued);
  EXPECT_EQ(refusals, 3u);
  EXPECT_EQ(value("SELECT 'still here'"), "still here");
}

TEST_F(QueueBound, ARefusalIsDroppedWhenTheConnectionIsClosedFirst) {
  open(1);
  bool first = false, second = false;
  conn->query("SELECT 1", {}, [&](PgResult&&) { first = true; });
  conn->query("SELECT 2", {}, [&](PgResult&&) { second = true; });
  conn->close();  // like the queued statement, the posted refusal is dropped without a call
  io.run_for(200ms);
  EXPECT_FALSE(first);
  EXPECT_FALSE(second);
  EXPECT_EQ(refused.value(), 1u);
}

TEST_F(QueueBound, DestroyedWithWaitsPendingOrFromItsOwnCallback) {
  // Destroyed while a read wait and a query are pending: the handlers complete later, harmlessly.
  open(10);
  bool answered = false;
  conn->query("SELECT pg_sleep(0.2)", {}, [&](PgResult&&) { answered = true; });
  io.poll();
  conn.reset();
  run_until(
      io, [] { return false; }, 300ms);
  EXPECT_FALSE(answered) << "a destroyed connection's callbacks must not run";

  // Destroyed by the callback of its own query, in the middle of its read handler.
  open(10);
  bool done = false;
  conn->query("SELECT 1", {}, [&](PgResult&& r) {
    EXPECT_TRUE(r.ok) << r.error;
    conn.reset();
    done = true;
  });
  ASSERT_TRUE(run_until(io, [&] { return done; }));
  run_until(
      io, [] { return false; }, 200ms);

  // Another connection on the same event loop is unaffected.
  open(10);
  EXPECT_EQ(value("SELECT 'still here'"), "still here");
}

TEST(Notifications, ABurstIsHandedOnInRunsWithTheLoopFreeBetween) {
  boost::asio::io_context io;
  int notified = 0, runs = 0, timer_fired_at = -1;
  PgConnection conn(io, PgConnection::Handlers{[&](std::string, std::string, int) {
                                                 ++notified;
                                                 // What a broadcast to many subscribers costs.
                                                 std::this_thread::sleep_for(1ms);
                                               },
                                               [&] { ++runs; }, nullptr});
  bool connected = false;
  conn.connect(test::test_dsn(), "", 5s, [&](const std::string& e) {
    EXPECT_EQ(e, "");
    connected = true;
  });
  ASSERT_TRUE(run_until(io, [&] { return connected; }));
  bool listening = false;
  conn.query("LISTEN burst", {}, [&](PgResult&& r) { listening = r.ok; });
  ASSERT_TRUE(run_until(io, [&] { return listening; }));

  // 50 notifications arrive at once; a timer due meanwhile runs before the last of them.
  conn.query("SELECT pg_notify('burst', g::text) FROM generate_series(1, 50) g", {},
             [&](PgResult&&) {
               auto t = std::make_shared<boost::asio::steady_timer>(io, 1ms);
               t->async_wait([&, t](boost::system::error_code) { timer_fired_at = notified; });
             });
  ASSERT_TRUE(run_until(io, [&] { return notified == 50 && timer_fired_at >= 0; }));
  EXPECT_GT(runs, 4) << "5 ms of 1 ms notifications per run";
  EXPECT_LT(timer_fired_at, 50);
}

}  // namespace
}  // namespace pgfanout::pg
