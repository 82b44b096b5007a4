#include "cache/EvictionQueue.hpp"

#include <gtest/gtest.h>

namespace pgfanout::redis {
namespace {

using Queue = EvictionQueue<int>;

TEST(RedisEvictionQueue, BatchesAreBoundedAndKeepOrder) {
  Queue q(10'000);
  for (int i = 0; i < 1300; ++i) q.push("k" + std::to_string(i), i, true);
  auto a = q.take(512);
  auto b = q.take(512);
  auto c = q.take(512);
  EXPECT_EQ(a.items.size(), 512u);
  EXPECT_EQ(b.items.size(), 512u);
  EXPECT_EQ(c.items.size(), 276u);
  EXPECT_EQ(a.items.front().key, "k0");
  EXPECT_EQ(b.items.front().key, "k512");
  EXPECT_EQ(c.items.back().ref, 1299);
  EXPECT_EQ(q.pending(), 0u);
  EXPECT_EQ(q.size(), 1300u);  // in flight still counts against the limit
  q.done(a);
  q.done(b);
  q.done(c);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_TRUE(q.take(512).items.empty());
}

TEST(RedisEvictionQueue, UnlinkAndDelKeysNeverShareACommand) {
  Queue q(100);
  q.push("a", 1, true);
  q.push("b", 2, false);
  q.push("c", 3, true);
  auto first = q.take(10);
  EXPECT_TRUE(first.unlink);
  ASSERT_EQ(first.items.size(), 2u);
  EXPECT_EQ(first.items[1].key, "c");
  auto second = q.take(10);
  EXPECT_FALSE(second.unlink);
  ASSERT_EQ(second.items.size(), 1u);
  EXPECT_EQ(second.items[0].key, "b");
}

TEST(RedisEvictionQueue, LimitCountsQueuedAndInFlight) {
  Queue q(3);
  EXPECT_TRUE(q.has_room(3));
  EXPECT_FALSE(q.has_room(4));
  q.push("a", 1, true);
  q.push("b", 2, true);
  auto batch = q.take(10);
  EXPECT_TRUE(q.has_room(1));
  EXPECT_FALSE(q.has_room(2));
  q.done(batch);
  EXPECT_TRUE(q.has_room(3));
}

TEST(RedisEvictionQueue, RequeuedBatchIsSentFirstAndStillCounted) {
  Queue q(100);
  for (int i = 0; i < 6; ++i) q.push("k" + std::to_string(i), i, true);
  auto lost = q.take(4);
  q.push("k6", 6, true);
  q.requeue(std::move(lost));
  EXPECT_EQ(q.size(), 7u);
  auto again = q.take(100);
  ASSERT_EQ(again.items.size(), 7u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(again.items[i].key, "k" + std::to_string(i));
}

// The keys a batch sends, in order.
std::vector<std::string> sent(const Queue::Batch& b) {
  std::vector<std::string> out;
  for (std::size_t i : b.unique) out.push_back(b.items[i].key);
  return out;
}

TEST(RedisEvictionQueue, RepeatedKeysInABatchAreSentOnceInOrderOfFirstAppearance) {
  Queue q(100);
  const char* keys[] = {"b", "a", "b", "c", "a", "a", "d", "c"};
  for (int i = 0; i < 8; ++i) q.push(keys[i], i, true);
  auto batch = q.take(100);
  EXPECT_EQ(sent(batch), (std::vector<std::string>{"b", "a", "c", "d"}));
  EXPECT_EQ(batch.duplicates(), 4u);
  // Every reference stays in the batch, to be answered with the command's reply.
  ASSERT_EQ(batch.items.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(batch.items[i].ref, i);
  EXPECT_EQ(q.size(), 8u);
  q.done(batch);
  EXPECT_EQ(q.size(), 0u);
}

TEST(RedisEvictionQueue, DeduplicationStaysWithinOneBatchAndOneCommandKind) {
  Queue q(100);
  for (int i = 0; i < 4; ++i) q.push("same", i, true);  // two batches of two
  q.push("same", 9, false);                             // DEL: its own command
  auto first = q.take(2);
  auto second = q.take(2);
  auto del = q.take(2);
  EXPECT_EQ(sent(first), std::vector<std::string>{"same"});
  EXPECT_EQ(sent(second), std::vector<std::string>{"same"});
  EXPECT_FALSE(del.unlink);
  EXPECT_EQ(sent(del), std::vector<std::string>{"same"});
  EXPECT_EQ(first.duplicates() + second.duplicates() + del.duplicates(), 2u);
}

TEST(RedisEvictionQueue, ARequeuedBatchIsDeduplicatedAgainWithWhatFollows) {
  Queue q(100);
  q.push("x", 1, true);
  q.push("y", 2, true);
  q.push("x", 3, true);
  auto lost = q.take(10);
  EXPECT_EQ(sent(lost), (std::vector<std::string>{"x", "y"}));
  q.push("y", 4, true);
  q.push("z", 5, true);
  q.requeue(std::move(lost));
  auto again = q.take(10);
  EXPECT_EQ(sent(again), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(again.items.size(), 5u);
  EXPECT_EQ(again.duplicates(), 2u);
}

TEST(RedisEvictionQueue, ClearHandsBackEveryReference) {
  Queue q(100);
  q.push("a", 1, true);
  q.push("b", 2, false);
  int sum = 0;
  q.clear([&](int ref) { sum += ref; });
  EXPECT_EQ(sum, 3);
  EXPECT_EQ(q.size(), 0u);
}

}  // namespace
}  // namespace pgfanout::redis

namespace pgfanout::redis {
namespace {

TEST(KeyOrder, APublishWaitsForEveryKeyQueuedBeforeIt) {
  KeyOrder order;
  auto a = order.take();
  auto b = order.take();
  auto mark = order.issued();  // a publish queued after a and b
  auto c = order.take();
  EXPECT_FALSE(order.answered_before(mark));
  order.answered(b);  // answered out of order (another node)
  order.answered(c);
  EXPECT_FALSE(order.answered_before(mark));
  order.answered(a);
  EXPECT_TRUE(order.answered_before(mark));
  EXPECT_TRUE(order.answered_before(order.issued()));
  auto d = order.take();
  EXPECT_FALSE(order.answered_before(order.issued()));
  order.clear();  // shutdown: nothing is waited for, late answers are ignored
  order.answered(d);
  EXPECT_TRUE(order.answered_before(order.issued()));
}

}  // namespace
}  // namespace pgfanout::redis
