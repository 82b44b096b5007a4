// Access::on_subscribe_at: a topic entry index found under other access rules (a reload on
// another hub thread in between) is checked against the rules in hand, never read past the end.
#include <gtest/gtest.h>

#include "hub/HubState.hpp"

namespace pgfanout::hub {
namespace {

TEST(HubAccess, OnSubscribeAtChecksTheIndexAgainstItsOwnRules) {
  Access access;
  access.config.topics.resize(2);
  access.config.topics[1].on_subscribe.emplace();
  EXPECT_FALSE(access.on_subscribe_at(0));
  EXPECT_TRUE(access.on_subscribe_at(1));
  EXPECT_FALSE(access.on_subscribe_at(2));  // an index of rules that had more entries
  EXPECT_FALSE(access.on_subscribe_at(static_cast<std::size_t>(-1)));
}

}  // namespace
}  // namespace pgfanout::hub
