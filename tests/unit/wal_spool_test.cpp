// pg::WalSpool: a streamed transaction's events staged in memory and, past the limit, in an
// unlinked file; read back in order; a rolled-back subtransaction's events (and those after)
// dropped, in memory and in the file; spools sharing a budget keep their memory under it
// together.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "pg/WalSpool.hpp"

using namespace pgfanout::pg;

namespace {

struct WalSpoolTest : ::testing::Test {
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("pgfanout-spool-unit-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  static WalEvent ev(int i, std::uint32_t subxid) {
    WalEvent e;
    e.channel = "ch" + std::to_string(i % 3);
    e.payload = "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + std::string(i % 50, 'p') + "\"";
    e.lsn = 1000 + static_cast<std::uint64_t>(i);
    e.stream_xid = 7;
    e.subxid = subxid;
    return e;
  }
  std::vector<int> read_all(WalSpool& s) {
    std::vector<int> out;
    WalEvent e;
    std::string error;
    while (s.next(e, error)) {
      out.push_back(std::atoi(e.payload.c_str() + 5));
      EXPECT_EQ(e.lsn, 1000u + static_cast<std::uint64_t>(out.back()));
      EXPECT_EQ(e.channel, "ch" + std::to_string(out.back() % 3));
    }
    EXPECT_EQ(error, "");
    return out;
  }
  static std::vector<int> range(int a, int b) {
    std::vector<int> v;
    for (int i = a; i <= b; ++i) v.push_back(i);
    return v;
  }

  std::filesystem::path dir;
};

TEST_F(WalSpoolTest, InMemoryBelowTheLimit) {
  WalSpool s(dir.string(), 1 << 20);
  std::string error;
  for (int i = 1; i <= 100; ++i) ASSERT_TRUE(s.add(ev(i, 7), error));
  EXPECT_FALSE(s.spilled());
  EXPECT_EQ(s.events(), 100u);
  EXPECT_EQ(read_all(s), range(1, 100));
}

TEST_F(WalSpoolTest, SpillsToAnUnlinkedFileAndReadsBackInOrder) {
  WalSpool s(dir.string(), 4096);
  std::string error;
  for (int i = 1; i <= 50000; ++i) ASSERT_TRUE(s.add(ev(i, 7), error)) << error;
  EXPECT_TRUE(s.spilled());
  EXPECT_GT(s.spilled_bytes(), 1'000'000u);
  EXPECT_TRUE(std::filesystem::is_empty(dir));
  EXPECT_EQ(read_all(s), range(1, 50000));
}

TEST_F(WalSpoolTest, ARolledBackSubtransactionIsDroppedWithWhatFollows) {
  for (std::size_t limit : {std::size_t{1} << 20, std::size_t{4096}}) {
    WalSpool s(dir.string(), limit);
    std::string error;
    for (int i = 1; i <= 3000; ++i) ASSERT_TRUE(s.add(ev(i, 7), error));
    for (int i = 3001; i <= 6000; ++i) ASSERT_TRUE(s.add(ev(i, 8), error));  // savepoint a
    for (int i = 6001; i <= 7000; ++i) ASSERT_TRUE(s.add(ev(i, 9), error));  // its child
    ASSERT_TRUE(s.drop_subxact(8, error)) << error;
    EXPECT_EQ(s.events(), 3000u);
    ASSERT_TRUE(s.drop_subxact(9, error)) << "already gone with its parent";
    ASSERT_TRUE(s.drop_subxact(42, error)) << "one with nothing staged";
    for (int i = 7001; i <= 9000; ++i) ASSERT_TRUE(s.add(ev(i, 10), error));
    auto want = range(1, 3000);
    auto rest = range(7001, 9000);
    want.insert(want.end(), rest.begin(), rest.end());
    EXPECT_EQ(read_all(s), want) << "limit " << limit;
  }
}

TEST_F(WalSpoolTest, SpoolsSharingABudgetStayUnderItTogether) {
  constexpr std::size_t kLimit = 256 * 1024;
  auto budget = std::make_shared<WalSpool::Budget>(WalSpool::Budget{kLimit});
  std::vector<std::unique_ptr<WalSpool>> spools;
  for (int k = 0; k < 20; ++k) spools.push_back(std::make_unique<WalSpool>(dir.string(), budget));
  std::string error;
  std::size_t peak = 0;
  // Twenty transactions of about 1 MB each, received interleaved.
  for (int i = 1; i <= 20000; ++i) {
    for (auto& s : spools) ASSERT_TRUE(s->add(ev(i, 7), error)) << error;
    peak = std::max(peak, budget->used);
  }
  // The budget counts what the buffers have allocated: a spool that spills keeps at most about
  // two spills' worth.
  EXPECT_LE(peak, kLimit + spools.size() * (2 * WalSpool::kMinSpill + 4096))
      << "memory stays bounded";
  EXPECT_GT(peak, kLimit / 2) << "the budget is used before anything spills";
  for (auto& s : spools) EXPECT_TRUE(s->spilled());
  for (auto& s : spools) EXPECT_EQ(read_all(*s), range(1, 20000));
  spools.clear();
  EXPECT_EQ(budget->used, 0u) << "a spool gives its memory back when it goes";
  // A rolled-back subtransaction gives back what it held in memory.
  WalSpool s(dir.string(), budget);
  for (int i = 1; i <= 100; ++i) ASSERT_TRUE(s.add(ev(i, 8), error));
  EXPECT_GT(budget->used, 0u);
  ASSERT_TRUE(s.drop_subxact(8, error));
  EXPECT_EQ(budget->used, 0u);
}

TEST_F(WalSpoolTest, ASpoolThatSpillsGivesItsBufferBack) {
  // The walsender sends the largest open transaction each time its memory fills, so blocks of
  // different transactions alternate: one fills most of the budget in memory, the next pushes
  // past it, the first then spills all it held. Its buffer must not stay allocated behind it.
  constexpr std::size_t kLimit = 1 << 20;
  auto budget = std::make_shared<WalSpool::Budget>(WalSpool::Budget{kLimit});
  std::vector<std::unique_ptr<WalSpool>> spools;
  for (int k = 0; k < 8; ++k) spools.push_back(std::make_unique<WalSpool>(dir.string(), budget));
  std::string error;
  std::size_t peak = 0, peak_held = 0;
  int next = 1;
  for (int round = 0; round < 6; ++round) {
    for (auto& s : spools) {
      for (int i = 0; i < 8000; ++i) {  // a block of about 450 KB
        ASSERT_TRUE(s->add(ev(next + i, 7), error)) << error;
        peak = std::max(peak, budget->used);
        if (i % 500 == 0) {
          std::size_t held = 0;
          for (auto& t : spools) held += t->buffer_capacity();
          peak_held = std::max(peak_held, held);
        }
      }
    }
    next += 8000;
  }
  const std::size_t bound = kLimit + spools.size() * (2 * WalSpool::kMinSpill + 4096);
  EXPECT_LE(peak, bound) << "as the budget counts it";
  EXPECT_LE(peak_held, bound) << "as the buffers hold it";
  for (auto& s : spools) EXPECT_TRUE(s->spilled());
  for (auto& s : spools) {
    auto got = read_all(*s);
    ASSERT_EQ(got.size(), 6u * 8000u);
    EXPECT_EQ(got.front(), 1);
    EXPECT_EQ(got.back(), 48000);
  }
}

TEST_F(WalSpoolTest, ManySubtransactionsAreTrackedAndDroppedByTheirId) {
  // A loop with an exception block per row: a subtransaction per event.
  WalSpool s(dir.string(), 1 << 20);
  std::string error;
  for (int i = 1; i <= 100000; ++i) {
    ASSERT_TRUE(s.add(ev(i, 1000 + static_cast<std::uint32_t>(i)), error));
  }
  ASSERT_TRUE(s.drop_subxact(1000 + 60001, error)) << error;  // and all after it
  EXPECT_EQ(s.events(), 60000u);
  ASSERT_TRUE(s.drop_subxact(1000 + 70000, error)) << "gone already";
  EXPECT_EQ(s.events(), 60000u);
  ASSERT_TRUE(s.add(ev(200000, 1000 + 60001), error)) << "its id may come again";
  ASSERT_TRUE(s.drop_subxact(1000 + 60001, error));
  EXPECT_EQ(s.events(), 60000u);
  EXPECT_EQ(read_all(s), range(1, 60000));
}

TEST_F(WalSpoolTest, AnUnusableDirectoryIsAnError) {
  WalSpool s((dir / "missing").string(), 4096);
  std::string error;
  bool ok = true;
  for (int i = 1; i <= 1000 && ok; ++i) ok = s.add(ev(i, 7), error);
  EXPECT_FALSE(ok);
  EXPECT_NE(error.find("creating a spool file"), std::string::npos) << error;
}

}  // namespace
