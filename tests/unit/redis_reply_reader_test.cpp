#include "redis/RedisReplyReader.hpp"

#include <hiredis/hiredis.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace pgfanout::redis {
namespace {

// A reply as text, so sequences of replies compare with EXPECT_EQ.
std::string show(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
      return "str(" + std::string(r->str, r->len) + ")";
    case REDIS_REPLY_STATUS:
      return "status(" + std::string(r->str, r->len) + ")";
    case REDIS_REPLY_ERROR:
      return "err(" + std::string(r->str, r->len) + ")";
    case REDIS_REPLY_INTEGER:
      return "int(" + std::to_string(r->integer) + ")";
    case REDIS_REPLY_NIL:
      return "nil";
    case REDIS_REPLY_ARRAY: {
      std::string out = "[";
      for (std::size_t i = 0; i < r->elements; ++i) out += (i ? "," : "") + show(r->element[i]);
      return out + "]";
    }
    default:
      return "?";
  }
}

// What a pipeline of UNLINK, SCAN, PUBLISH... answers: every RESP2 type, a nested array, an
// empty bulk string, a null bulk and array, and a bulk string that contains CRLF.
const std::string kPipelined =
    "+OK\r\n"
    ":42\r\n"
    "$5\r\nhello\r\n"
    "$0\r\n\r\n"
    "$-1\r\n"
    "-ERR wrong number of arguments\r\n"
    "*2\r\n$1\r\n0\r\n*3\r\n$3\r\nk:1\r\n$3\r\nk:2\r\n:-7\r\n"
    "*-1\r\n"
    "*0\r\n"
    "$4\r\na\r\nb\r\n";

const std::vector<std::string> kExpected = {
    "status(OK)",
    "int(42)",
    "str(hello)",
    "str()",
    "nil",
    "err(ERR wrong number of arguments)",
    "[str(0),[str(k:1),str(k:2),int(-7)]]",
    "nil",
    "[]",
    "str(a\r\nb)",
};

// Feeds `pieces` one after the other, taking every complete reply after each.
std::vector<std::string> read_all(const std::vector<std::string>& pieces) {
  RedisReplyReader reader;
  std::vector<std::string> out;
  for (const auto& piece : pieces) {
    EXPECT_TRUE(reader.feed(piece.data(), piece.size()));
    while (auto reply = reader.next()) out.push_back(show(reply.get()));
    EXPECT_FALSE(reader.failed()) << reader.error();
  }
  return out;
}

TEST(RedisReplyReader, PipelinedRepliesInOneRead) {
  EXPECT_EQ(read_all({kPipelined}), kExpected);
}

TEST(RedisReplyReader, PipelinedRepliesSplitAtEveryByteBoundary) {
  for (std::size_t cut = 0; cut <= kPipelined.size(); ++cut) {
    EXPECT_EQ(read_all({kPipelined.substr(0, cut), kPipelined.substr(cut)}), kExpected)
        << "split at byte " << cut;
  }
}

TEST(RedisReplyReader, PipelinedRepliesSplitIntoThreeAtEveryPairOfBoundaries) {
  const std::size_t n = kPipelined.size();
  for (std::size_t a = 0; a <= n; a += 3) {
    for (std::size_t b = a; b <= n; ++b) {
      ASSERT_EQ(
          read_all({kPipelined.substr(0, a), kPipelined.substr(a, b - a), kPipelined.substr(b)}),
          kExpected)
          << "split at bytes " << a << " and " << b;
    }
  }
}

TEST(RedisReplyReader, OneByteAtATime) {
  std::vector<std::string> bytes;
  for (char c : kPipelined) bytes.emplace_back(1, c);
  EXPECT_EQ(read_all(bytes), kExpected);
}

TEST(RedisReplyReader, NoReplyUntilItIsComplete) {
  RedisReplyReader reader;
  const std::string partial = "*2\r\n$3\r\nabc\r\n$3\r\nde";
  ASSERT_TRUE(reader.feed(partial.data(), partial.size()));
  EXPECT_EQ(reader.next(), nullptr);
  EXPECT_FALSE(reader.failed());
  ASSERT_TRUE(reader.feed("f\r\n", 3));
  auto reply = reader.next();
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(show(reply.get()), "[str(abc),str(def)]");
  EXPECT_EQ(reader.next(), nullptr);
}

TEST(RedisReplyReader, MalformedStreamFailsForGood) {
  RedisReplyReader reader;
  const std::string bad = "+OK\r\n?what\r\n+OK\r\n";
  ASSERT_TRUE(reader.feed(bad.data(), bad.size()));
  auto first = reader.next();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(show(first.get()), "status(OK)");
  EXPECT_EQ(reader.next(), nullptr);
  EXPECT_TRUE(reader.failed());
  EXPECT_NE(reader.error().find("Protocol error"), std::string::npos) << reader.error();
  EXPECT_EQ(reader.next(), nullptr);
  EXPECT_FALSE(reader.feed("+OK\r\n", 5));
}

}  // namespace
}  // namespace pgfanout::redis
