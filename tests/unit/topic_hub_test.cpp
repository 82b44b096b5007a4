// TopicHub: subscribe and unsubscribe are idempotent and counted, a topic without subscribers is
// forgotten, publish reaches exactly the topic's subscribers with the one shared frame, and
// resync_all tells every subscriber about each of its topics.
#include <gtest/gtest.h>

#include "hub/TopicHub.hpp"

namespace pgfanout::hub {
namespace {

struct Recorder final : Subscriber {
  void deliver(const HubMessage& m) override {
    got.push_back(std::string(m.topic) + "=" + *m.frame);
    frames.push_back(m.frame.get());
  }
  void resync(std::string_view topic) override { resyncs.emplace_back(topic); }
  std::vector<std::string> got, resyncs;
  std::vector<const std::string*> frames;
};

HubMessage message(std::string_view topic, std::shared_ptr<const std::string> frame) {
  HubMessage m;
  m.topic = topic;
  m.frame = std::move(frame);
  return m;
}

TEST(TopicHub, SubscribeAndUnsubscribeAreIdempotentAndCounted) {
  TopicHub hub;
  Recorder a, b;
  EXPECT_TRUE(hub.subscribe("t", &a));
  EXPECT_FALSE(hub.subscribe("t", &a));
  EXPECT_TRUE(hub.subscribe("t", &b));
  EXPECT_TRUE(hub.subscribe("u", &a));
  EXPECT_EQ(hub.topic_count(), 2u);
  EXPECT_EQ(hub.subscription_count(), 3u);

  EXPECT_TRUE(hub.unsubscribe("t", &a));
  EXPECT_FALSE(hub.unsubscribe("t", &a));
  EXPECT_FALSE(hub.unsubscribe("nobody", &a));
  EXPECT_EQ(hub.subscription_count(), 2u);
  EXPECT_TRUE(hub.unsubscribe("u", &a));
  EXPECT_FALSE(hub.has_subscribers("u")) << "a topic without subscribers is forgotten";
  EXPECT_EQ(hub.topic_count(), 1u);
}

TEST(TopicHub, PublishReachesExactlyTheTopicsSubscribersWithOneSharedFrame) {
  TopicHub hub;
  Recorder a, b, c;
  hub.subscribe("t", &a);
  hub.subscribe("t", &b);
  hub.subscribe("other", &c);
  auto frame = std::make_shared<const std::string>("hello");
  EXPECT_EQ(hub.publish(message("t", frame)), 2u);
  EXPECT_EQ(a.got, std::vector<std::string>{"t=hello"});
  EXPECT_EQ(b.got, std::vector<std::string>{"t=hello"});
  EXPECT_TRUE(c.got.empty());
  EXPECT_EQ(a.frames.front(), frame.get()) << "the frame is shared, not copied";
  EXPECT_EQ(b.frames.front(), frame.get());
  EXPECT_EQ(hub.publish(message("nobody", frame)), 0u);

  // A subscriber removed in the middle of the list: the others still get every message.
  hub.unsubscribe("t", &a);
  EXPECT_EQ(hub.publish(message("t", std::make_shared<const std::string>("again"))), 1u);
  EXPECT_EQ(b.got.back(), "t=again");
  EXPECT_EQ(a.got.size(), 1u);
}

TEST(TopicHub, ResyncAllNamesEveryTopicOfEverySubscriber) {
  TopicHub hub;
  Recorder a, b;
  hub.subscribe("t", &a);
  hub.subscribe("u", &a);
  hub.subscribe("u", &b);
  hub.resync_all();
  std::sort(a.resyncs.begin(), a.resyncs.end());
  EXPECT_EQ(a.resyncs, (std::vector<std::string>{"t", "u"}));
  EXPECT_EQ(b.resyncs, std::vector<std::string>{"u"});
}

}  // namespace
}  // namespace pgfanout::hub
