// HubResult and reply_frame(): a hub operation's outcome is data; the frame a WebSocket client gets
// is made from it — an ack carrying the result, or an error with the code and message — and the
// Hippie publish endpoint reads success from ok(), not from the text of a frame.
#include <gtest/gtest.h>

#include "hub/HubResult.hpp"
#include "hub/ServerFrames.hpp"

namespace pgfanout::hub {
namespace {

TEST(HubResult, SuccessAndFailureAreData) {
  auto ok = HubResult::success(R"([{"id":1}])");
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.result_json, R"([{"id":1}])");
  auto bad = HubResult::failure("bad_args", "missing argument \"b\"");
  EXPECT_FALSE(bad.ok());
  ASSERT_TRUE(bad.error);
  EXPECT_EQ(bad.error->code, "bad_args");
  EXPECT_TRUE(HubResult::success().ok());
}

TEST(HubResult, ReplyFrameIsTheAckOrTheError) {
  EXPECT_EQ(reply_frame("7", HubResult::success(R"([{"id":1}])")), ack_frame("7", R"([{"id":1}])"));
  EXPECT_EQ(reply_frame("7", HubResult::success()), ack_frame("7"));
  EXPECT_EQ(reply_frame("\"r\"", HubResult::failure("unauthorized", "log in first")),
            error_frame("\"r\"", "unauthorized", "log in first"));
  EXPECT_NE(reply_frame({}, HubResult::failure("x", "a \"quoted\" message")).find(R"(\"quoted\")"),
            std::string::npos)
      << "messages are escaped";
}

}  // namespace
}  // namespace pgfanout::hub
