// EventHistory: what a client resuming after a WAL position gets back, and when it must resync.
#include <gtest/gtest.h>

#include "hub/EventHistory.hpp"

namespace pgfanout::hub {
namespace {

std::shared_ptr<const std::string> frame(const std::string& s) {
  return std::make_shared<const std::string>(s);
}

std::vector<std::string> frames(const EventHistory::Replay& r) {
  std::vector<std::string> out;
  for (const auto& e : r.events) out.push_back(*e.frame);
  return out;
}

TEST(EventHistory, ReplaysTheTopicsEventsAfterThePosition) {
  EventHistory h(10);
  h.record(100, "a", frame("a1"));
  h.record(200, "b", frame("b1"));
  h.record(300, "a", frame("a2"));
  h.record(300, "b", frame("b2"));  // one change pushed to two topics
  auto r = h.since(100, {"a"});
  EXPECT_EQ(frames(r), (std::vector<std::string>{"a2"}));
  EXPECT_TRUE(r.lost.empty());
  r = h.since(150, {"a", "b"});
  EXPECT_EQ(frames(r), (std::vector<std::string>{"b1", "a2", "b2"}));
  r = h.since(300, {"a"});
  EXPECT_TRUE(r.events.empty());
  EXPECT_TRUE(r.lost.empty()) << "up to date: nothing to replay, nothing lost";
}

TEST(EventHistory, APositionOlderThanWhatIsKeptIsLost) {
  EventHistory h(2);
  h.record(100, "a", frame("a1"));
  h.record(200, "a", frame("a2"));
  h.record(300, "a", frame("a3"));  // a1 is dropped
  auto r = h.since(100, {"a", "b"});
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.lost, (std::vector<std::string>{"a", "b"}));
  r = h.since(200, {"a"});
  EXPECT_EQ(frames(r), (std::vector<std::string>{"a3"}));
  EXPECT_TRUE(r.lost.empty());
  // Before anything this history saw (e.g. an id from before a restart): lost.
  EXPECT_EQ(h.since(50, {"a"}).lost, (std::vector<std::string>{"a"}));
}

TEST(EventHistory, AnEmptyOrDisabledHistoryCannotResume) {
  EventHistory empty(10);
  EXPECT_EQ(empty.since(100, {"a"}).lost, (std::vector<std::string>{"a"}));
  EventHistory off(0);
  EXPECT_FALSE(off.enabled());
  off.record(100, "a", frame("a1"));
  EXPECT_EQ(off.size(), 0u);
  EXPECT_EQ(off.since(100, {"a"}).lost, (std::vector<std::string>{"a"}));
}

TEST(EventHistory, EventsStreamedAgainAreNotKeptTwice) {
  EventHistory h(10);
  h.record(100, "a", frame("a1"));
  h.record(200, "a", frame("a2"));
  h.record(100, "a", frame("a1"));  // the transaction came again after a reconnect
  h.record(200, "a", frame("a2"));
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(frames(h.since(100, {"a"})), (std::vector<std::string>{"a2"}));
}

}  // namespace
}  // namespace pgfanout::hub
