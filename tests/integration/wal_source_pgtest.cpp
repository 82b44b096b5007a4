// WalSource against the real PostgreSQL (wal_level = logical): every op and pgfanout.emit in
// commit order, rollbacks gone, the confirmed position held back by unsettled completions, a
// failed action streamed again, a restart replaying what was not confirmed, a 100,000-row
// transaction in bounded memory, and DDL in the middle of the stream.
#include <gtest/gtest.h>

#include "support/WalFixture.hpp"

namespace pgfanout::pg {
namespace {

using namespace std::chrono_literals;
using test::run_until;

struct WalSourceTest : test::WalFixture {};

TEST_F(WalSourceTest, EveryOpAndEmitInCommitOrderRollbacksGone) {
  start();
  exec("INSERT INTO items VALUES (1, 'a', 1)");
  exec(
      "BEGIN; INSERT INTO items VALUES (2, 'gone', 2); SELECT pgfanout.emit('app', 'gone'); "
      "ROLLBACK");
  exec("UPDATE items SET name = 'b' WHERE id = 1");
  exec("SELECT pgfanout.emit('app', '{\"k\": 1}')");
  exec("DELETE FROM items WHERE id = 1");
  ASSERT_TRUE(wait_received(4));
  run_until(
      io, [] { return false; }, 300ms);  // nothing more comes
  ASSERT_EQ(received.size(), 4u);
  EXPECT_EQ(received[0].channel, "items_changed");
  EXPECT_NE(received[0].payload.find("\"op\":\"INSERT\""), std::string::npos);
  EXPECT_NE(received[1].payload.find("\"op\":\"UPDATE\""), std::string::npos);
  EXPECT_EQ(received[2].channel, "app");
  EXPECT_EQ(received[2].payload, "{\"k\": 1}");
  EXPECT_NE(received[3].payload.find("\"op\":\"DELETE\""), std::string::npos);
  for (std::size_t i = 1; i < received.size(); ++i) {
    EXPECT_GT(received[i].lsn, received[i - 1].lsn) << "events carry increasing LSNs";
  }
  for (const auto& r : received) EXPECT_EQ(r.payload.find("gone"), std::string::npos);
}

TEST_F(WalSourceTest, ThePositionMovesOnlyPastSettledTransactions) {
  settle_at_once = false;
  start();
  const std::string before = server_confirmed();
  exec("INSERT INTO items VALUES (1, 'a', 1)");
  ASSERT_TRUE(wait_received(1));
  // Status updates go out every 200 ms: while the completion is held the slot stays put.
  run_until(
      io, [] { return false; }, 700ms);
  EXPECT_EQ(server_confirmed(), before);
  EXPECT_LE(source->status().confirmed, received[0].lsn);
  settle_all();
  ASSERT_TRUE(run_until(
      io, [&] { return server_confirmed() != before; }, 5s))
      << "the confirmed position did not move after the actions completed";
}

TEST_F(WalSourceTest, AFailedActionIsStreamedAgain) {
  settle_at_once = false;
  start();
  exec("INSERT INTO items VALUES (1, 'a', 1)");
  ASSERT_TRUE(wait_received(1));
  held.front()->fail();
  settle_all();
  ASSERT_TRUE(wait_received(2)) << "the transaction was not delivered again";
  EXPECT_EQ(received[1].payload, received[0].payload);
  EXPECT_EQ(received[1].lsn, received[0].lsn);
  settle_all();
  exec("INSERT INTO items VALUES (2, 'b', 2)");
  ASSERT_TRUE(wait_received(3));
  EXPECT_NE(received[2].payload.find("\"id\": 2"), std::string::npos) << received[2].payload;
}

TEST_F(WalSourceTest, ARestartReplaysWhatWasNotConfirmed) {
  settle_at_once = false;
  start();
  exec("INSERT INTO items VALUES (1, 'a', 1)");
  exec("INSERT INTO items VALUES (2, 'b', 2)");
  ASSERT_TRUE(wait_received(2));
  // The first transaction's actions complete; the second's never do (the process dies).
  ASSERT_NO_FATAL_FAILURE(die_and_restart(1));
  ASSERT_TRUE(wait_received(1));
  run_until(
      io, [] { return false; }, 300ms);
  ASSERT_EQ(received.size(), 1u) << "only the unconfirmed transaction comes again";
  EXPECT_NE(received[0].payload.find("\"id\": 2"), std::string::npos) << received[0].payload;
}

TEST_F(WalSourceTest, AHundredThousandRowTransactionFlowsInBoundedMemory) {
  wal.max_pending = 1000;
  exec("INSERT INTO items SELECT g, 'x', 0 FROM generate_series(1, 100000) g");
  start();
  ASSERT_TRUE(wait_received(100'000, 120s));
  received.clear();
  settle_at_once = false;
  exec("UPDATE items SET n = n + 1");
  std::size_t most_held = 0;
  ASSERT_TRUE(run_until(
      io,
      [&] {
        most_held = std::max(most_held, held.size());
        while (held.size() > 100) held.pop_front();  // the actions complete a little behind
        return received.size() >= 100'000;
      },
      120s))
      << received.size() << " events";
  settle_all();
  run_until(
      io, [] { return false; }, 300ms);
  EXPECT_EQ(received.size(), 100'000u) << "each row once";
  for (std::size_t i = 0; i < received.size(); i += 9999) {
    EXPECT_NE(received[i].payload.find("\"op\":\"UPDATE\""), std::string::npos);
  }
  EXPECT_LE(most_held, 1000u) << "reading did not pause at wal.max_pending";
  EXPECT_GT(most_held, 100u);
}

TEST_F(WalSourceTest, DdlInTheMiddleOfTheStream) {
  start();
  exec("INSERT INTO items VALUES (1, 'a', 1)");
  ASSERT_TRUE(wait_received(1));
  exec(
      "CREATE TYPE mood AS ENUM ('sad', 'happy');"
      "ALTER TABLE items ADD COLUMN m mood, ADD COLUMN tags text[];"
      "INSERT INTO items VALUES (2, 'b', 2, 'happy', '{x,y}')");
  exec("ALTER TABLE items DROP COLUMN n; INSERT INTO items VALUES (3, 'c', 'sad', NULL)");
  ASSERT_TRUE(wait_received(3));
  EXPECT_NE(received[1].payload.find("\"m\": \"happy\""), std::string::npos) << received[1].payload;
  EXPECT_NE(received[1].payload.find("\"tags\": [\"x\", \"y\"]"), std::string::npos)
      << received[1].payload;
  EXPECT_EQ(received[2].payload.find("\"n\""), std::string::npos) << received[2].payload;
  EXPECT_NE(received[2].payload.find("\"tags\": null"), std::string::npos) << received[2].payload;
}

}  // namespace
}  // namespace pgfanout::pg
