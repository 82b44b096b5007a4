// WalSource with transactions streamed before their commit (pgoutput protocol 2, `streaming
// on`, a small wal.decoding_work_mem): nothing is acted on before the commit, every row comes
// once and in order with the commit's txid and time, a rollback (whole or to a savepoint) drops
// what it undid, a spool file takes what does not fit wal.spool_memory and leaves nothing behind,
// a failure to stage restarts the stream without losing anything, and a source that dies while
// delivering a committed streamed transaction gets it all again.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "support/WalFixture.hpp"

namespace pgfanout::pg {
namespace {

using namespace std::chrono_literals;
using test::run_until;

struct WalStreamingTest : test::WalFixture {
  void SetUp() override {
    WalFixture::SetUp();
    wal.streaming = true;
    wal.decoding_work_mem = 64 * 1024;  // the smallest: 2,000 rows are streamed
    spool = std::filesystem::temp_directory_path() /
            ("pgfanout-spool-test-" + std::to_string(::getpid()) + "-" + db.name());
    std::filesystem::create_directories(spool);
    wal.spool_dir = spool.string();
  }
  void TearDown() override { std::filesystem::remove_all(spool); }

  double metric(std::string_view name, const Labels& labels = {}) {
    return metrics.value(name, labels);
  }
  double committed() {
    return metric("pgfanout_wal_streamed_transactions_total", {{"result", "committed"}});
  }
  double aborted() {
    return metric("pgfanout_wal_streamed_transactions_total", {{"result", "aborted"}});
  }
  double staged() { return metric("pgfanout_wal_staged_events"); }
  // Whether part of a transaction still open was received and staged.
  bool wait_staged() {
    return run_until(
        io, [&] { return staged() >= 1000; }, 15s);
  }

  // The ids of the received row events, in order.
  std::vector<int> ids() {
    std::vector<int> out;
    for (const auto& r : received) {
      auto at = r.payload.find("\"id\": ");
      if (at != std::string::npos) out.push_back(std::atoi(r.payload.c_str() + at + 6));
    }
    return out;
  }

  std::filesystem::path spool;
};

TEST_F(WalStreamingTest, NothingIsActedOnBeforeTheCommitThenEveryRowOnceInOrder) {
  start();
  test::BlockingPg writer(db.dsn());
  writer.exec("BEGIN");
  std::string txid = writer.value("SELECT pg_current_xact_id()::text").value_or("?");
  writer.exec("INSERT INTO items SELECT g, repeat('x', 50), g FROM generate_series(1, 5000) g");
  ASSERT_TRUE(wait_staged()) << "the open transaction was not streamed (staged " << staged() << ")";
  run_until(
      io, [] { return false; }, 200ms);
  EXPECT_TRUE(received.empty()) << "an event of an open transaction reached the actions";
  writer.exec("INSERT INTO items SELECT g, 'y', g FROM generate_series(5001, 6000) g");
  std::string commit_time =
      writer.value("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')").value_or("?");
  writer.exec("COMMIT");
  ASSERT_TRUE(wait_received(6000));
  run_until(
      io, [] { return false; }, 300ms);
  ASSERT_EQ(received.size(), 6000u);
  auto got = ids();
  ASSERT_EQ(got.size(), 6000u);
  for (int i = 0; i < 6000; ++i) ASSERT_EQ(got[i], i + 1) << "out of order at " << i;
  for (std::size_t i = 0; i < received.size(); i += 997) {
    const auto& p = received[i].payload;
    EXPECT_NE(p.find("\"txid\":\"" + txid + "\",\"at\":\"" + commit_time), std::string::npos) << p;
    EXPECT_EQ(p.back(), '}');
    EXPECT_NE(p.find("\"lsn\":\""), std::string::npos);
  }
  for (std::size_t i = 1; i < received.size(); ++i) ASSERT_GT(received[i].lsn, received[i - 1].lsn);
  EXPECT_GE(committed(), 1);
  EXPECT_EQ(staged(), 0);
}

TEST_F(WalStreamingTest, AStreamedTransactionWithNothingForTheDaemonLetsThePositionMoveOn) {
  // Not in the publication; no autovacuum, whose transactions would move the position on too.
  exec("CREATE TABLE unwatched (id int, pad text) WITH (autovacuum_enabled = off)");
  start();
  const std::string before = server_confirmed();
  exec("INSERT INTO unwatched SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g");
  const std::string end = sql("SELECT pg_current_wal_insert_lsn()::text");
  ASSERT_TRUE(run_until(
      io, [&] { return committed() >= 1; }, 15s))
      << "the transaction was not streamed";
  // Nothing else is written: its commit alone must move the confirmed position past it.
  EXPECT_TRUE(run_until(
      io,
      [&] {
        return sql("SELECT confirmed_flush_lsn >= '" + end +
                   "'::pg_lsn FROM pg_replication_slots WHERE slot_name = '" + wal.slot + "'") ==
               "t";
      },
      10s))
      << "confirmed " << server_confirmed() << " (before " << before << "), commit ended at "
      << end;
  EXPECT_TRUE(received.empty());
}

TEST_F(WalStreamingTest, AppEventsOfAStreamedTransactionKeepTheirPayload) {
  start();
  exec(
      "BEGIN;"
      "INSERT INTO items SELECT g, 'x', g FROM generate_series(1, 3000) g;"
      "SELECT pgfanout.emit('app', '{\"k\": 1}');"
      "SELECT pgfanout.emit('app', 'plain text');"
      "COMMIT");
  ASSERT_TRUE(wait_received(3002));
  EXPECT_GE(committed(), 1) << "the transaction was streamed";
  ASSERT_EQ(received[3000].channel, "app");
  EXPECT_EQ(received[3000].payload, "{\"k\": 1}");
  EXPECT_EQ(received[3001].payload, "plain text");
  EXPECT_NE(received[2999].payload.find(",\"txid\":\""), std::string::npos);
}

TEST_F(WalStreamingTest, ASmallTransactionCommittedMeanwhileComesFirst) {
  start();
  test::BlockingPg writer(db.dsn());
  writer.exec("BEGIN; INSERT INTO items SELECT g, 'big', g FROM generate_series(1, 5000) g");
  ASSERT_TRUE(wait_staged());
  exec("INSERT INTO items VALUES (100000, 'small', 0)");
  ASSERT_TRUE(wait_received(1));
  writer.exec("COMMIT");
  ASSERT_TRUE(wait_received(5001));
  auto got = ids();
  ASSERT_EQ(got.size(), 5001u);
  EXPECT_EQ(got[0], 100000) << "events follow the commit order";
  EXPECT_EQ(got[1], 1);
  EXPECT_EQ(got[5000], 5000);
}

TEST_F(WalStreamingTest, RollbacksDropWhatTheyUndid) {
  start();
  {
    test::BlockingPg writer(db.dsn());
    writer.exec("BEGIN; INSERT INTO items SELECT g, 'gone', g FROM generate_series(1, 5000) g");
    ASSERT_TRUE(wait_staged());
    writer.exec("ROLLBACK");
  }
  ASSERT_TRUE(run_until(
      io, [&] { return aborted() >= 1 && staged() == 0; }, 15s))
      << "aborted " << aborted() << ", staged " << staged();
  // Savepoints: the rolled-back one (and one it started) go; what came before and after stays.
  exec(
      "BEGIN;"
      "INSERT INTO items SELECT g, 'a', g FROM generate_series(1, 3000) g;"
      "SAVEPOINT s1;"
      "INSERT INTO items SELECT g, 'b', g FROM generate_series(3001, 6000) g;"
      "SAVEPOINT s2;"
      "INSERT INTO items SELECT g, 'b2', g FROM generate_series(6001, 7000) g;"
      "RELEASE s2;"
      "ROLLBACK TO s1;"
      "INSERT INTO items SELECT g, 'c', g FROM generate_series(7001, 10000) g;"
      "SAVEPOINT s3;"
      "INSERT INTO items SELECT g, 'd', g FROM generate_series(10001, 11000) g;"
      "RELEASE s3;"
      "COMMIT");
  ASSERT_TRUE(wait_received(7000));
  run_until(
      io, [] { return false; }, 500ms);
  auto got = ids();
  ASSERT_EQ(got.size(), 7000u);
  std::vector<int> want;
  for (int i = 1; i <= 3000; ++i) want.push_back(i);
  for (int i = 7001; i <= 11000; ++i) want.push_back(i);
  EXPECT_EQ(got, want);
  for (const auto& r : received) ASSERT_EQ(r.payload.find("gone"), std::string::npos);
  EXPECT_GE(committed(), 1);
}

TEST_F(WalStreamingTest, ASpoolFileTakesTheRestAndLeavesNothingBehind) {
  wal.spool_memory = 4096;
  start();
  exec("INSERT INTO items SELECT g, repeat('z', 200), g FROM generate_series(1, 20000) g");
  ASSERT_TRUE(wait_received(20000, 60s));
  run_until(
      io, [] { return false; }, 300ms);
  EXPECT_EQ(received.size(), 20000u);
  auto got = ids();
  std::set<int> distinct(got.begin(), got.end());
  EXPECT_EQ(distinct.size(), 20000u);
  EXPECT_GT(metric("pgfanout_wal_spilled_bytes_total"), 20000.0 * 200);
  EXPECT_TRUE(std::filesystem::is_empty(spool)) << "spool files are unlinked when made";
}

TEST_F(WalStreamingTest, AStagingFailureRestartsTheStreamAndLosesNothing) {
  wal.spool_memory = 4096;
  wal.spool_dir = (spool / "not-yet").string();
  start();
  exec("INSERT INTO items SELECT g, repeat('z', 100), g FROM generate_series(1, 5000) g");
  ASSERT_TRUE(run_until(
      io, [&] { return metric("pgfanout_wal_spool_errors_total") >= 1; }, 15s));
  EXPECT_TRUE(received.empty());
  std::filesystem::create_directories(spool / "not-yet");
  ASSERT_TRUE(wait_received(5000, 60s)) << received.size();
  run_until(
      io, [] { return false; }, 300ms);
  auto got = ids();
  std::set<int> distinct(got.begin(), got.end());
  EXPECT_EQ(distinct.size(), 5000u) << "every row arrived after the spool dir appeared";
  EXPECT_EQ(got.size(), 5000u) << "nothing was acted on before the failure";
}

TEST_F(WalStreamingTest, ASourceThatDiesWhileDeliveringGetsItAllAgain) {
  settle_at_once = false;
  wal.max_pending = 500;
  start();
  exec("INSERT INTO items SELECT g, 'x', g FROM generate_series(1, 5000) g");
  ASSERT_TRUE(wait_received(500));
  run_until(
      io, [] { return false; }, 200ms);
  EXPECT_EQ(received.size(), 500u) << "delivery pauses at wal.max_pending";
  // Some of them complete, then the process dies.
  ASSERT_NO_FATAL_FAILURE(die_and_restart(300));
  ASSERT_TRUE(wait_received(5000, 60s));
  auto got = ids();
  ASSERT_EQ(got.size(), 5000u);
  EXPECT_EQ(got.front(), 1);
  EXPECT_EQ(got.back(), 5000);
}

}  // namespace
}  // namespace pgfanout::pg
