// The ids that name Hippie pipes: 32 lowercase hex digits (the form HippiePoll accepts back),
// drawn from the kernel's random source, never repeating.
#include <set>

#include <gtest/gtest.h>

#include "hub/HubState.hpp"

namespace pgfanout::hub {
namespace {

TEST(HippieClientId, IsThirtyTwoHexDigitsAndNeverRepeats) {
  std::set<std::string> seen;
  std::size_t digit_counts[16] = {};
  for (int i = 0; i < 10'000; ++i) {
    std::string id = random_client_id();
    ASSERT_EQ(id.size(), 32u) << id;
    for (char c : id) {
      ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
      ++digit_counts[c <= '9' ? c - '0' : c - 'a' + 10];
    }
    EXPECT_TRUE(seen.insert(id).second) << "repeated: " << id;
  }
  // 320,000 digits, 20,000 of each expected: every digit is used, none hugely over-represented.
  for (std::size_t n : digit_counts) {
    EXPECT_GT(n, 18'000u);
    EXPECT_LT(n, 22'000u);
  }
}

}  // namespace
}  // namespace pgfanout::hub
