#include "redis/RedisUrl.hpp"

#include <gtest/gtest.h>

namespace pgfanout::redis {
namespace {

struct GoodCase {
  const char* text;
  const char* host;
  int port;
  const char* socket;
  int db;
  const char* user;
  const char* password;
};

TEST(RedisUrl, ParsesWhatItShould) {
  const GoodCase cases[] = {
      {"redis://127.0.0.1:6379/0", "127.0.0.1", 6379, "", 0, "", ""},
      {"redis://localhost", "localhost", 6379, "", 0, "", ""},
      {"redis://cache.internal:6380/3", "cache.internal", 6380, "", 3, "", ""},
      {"redis://:s3cret@h/1", "h", 6379, "", 1, "", "s3cret"},
      {"redis://s3cret@h", "h", 6379, "", 0, "", "s3cret"},
      {"redis://app:p%40ss%3A@h:1/2", "h", 1, "", 2, "app", "p@ss:"},
      {"redis://[::1]:7000/4", "::1", 7000, "", 4, "", ""},
      {"redis://[::1]", "::1", 6379, "", 0, "", ""},
      {"redis://h/", "h", 6379, "", 0, "", ""},
      {"unix:///run/redis/redis.sock", "", 6379, "/run/redis/redis.sock", 0, "", ""},
      {"unix:///run/redis.sock?db=5", "", 6379, "/run/redis.sock", 5, "", ""},
      {"unix://app:pw@/run/redis.sock?db=1", "", 6379, "/run/redis.sock", 1, "app", "pw"},
  };
  for (const auto& c : cases) {
    std::string error;
    auto url = RedisUrl::parse(c.text, error);
    ASSERT_TRUE(url) << c.text << ": " << error;
    EXPECT_EQ(url->host, c.host) << c.text;
    EXPECT_EQ(url->port, c.port) << c.text;
    EXPECT_EQ(url->socket_path, c.socket) << c.text;
    EXPECT_EQ(url->db, c.db) << c.text;
    EXPECT_EQ(url->user, c.user) << c.text;
    EXPECT_EQ(url->password, c.password) << c.text;
  }
}

TEST(RedisUrl, RefusesWhatItShould) {
  const std::pair<const char*, const char*> cases[] = {
      {"rediss://", "no host"},
      {"rediss://h?tls=1", "tls_* keys"},
      {"redis+tls://h", "starts with redis://, rediss://"},
      {"http://h", "starts with redis://, rediss:// (TLS) or unix://"},
      {"redis://", "no host"},
      {"redis://h:0", "bad port"},
      {"redis://h:70000", "bad port"},
      {"redis://h:", "bad port"},
      {"redis://h:12x", "bad port"},
      {"redis://h/x", "bad database"},
      {"redis://h/-1", "bad database"},
      {"redis://h?db=1", "query parameters"},
      {"redis://[::1", "unterminated"},
      {"redis://a:%zz@h", "%-escape"},
      {"unix://relative.sock", "absolute socket path"},
      {"unix:///s.sock?database=1", "db=N"},
  };
  for (const auto& [text, expected] : cases) {
    std::string error;
    EXPECT_FALSE(RedisUrl::parse(text, error)) << text;
    EXPECT_NE(error.find(expected), std::string::npos) << text << ": " << error;
  }
}

TEST(RedisUrl, RedissIsTcpWithTls) {
  std::string error;
  auto url = RedisUrl::parse("rediss://app:pw@cache.example.org:6380/2", error);
  ASSERT_TRUE(url) << error;
  EXPECT_TRUE(url->tls.enabled);
  EXPECT_EQ(url->host, "cache.example.org");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->db, 2);
  EXPECT_EQ(url->user, "app");
  EXPECT_EQ(url->password, "pw");
  EXPECT_EQ(url->describe(), "rediss://app@cache.example.org:6380/2");
  EXPECT_EQ(url->tls.expected_name(url->host), "cache.example.org");
  url->tls.server_name = "redis.internal";
  EXPECT_EQ(url->tls.expected_name(url->host), "redis.internal");

  url = RedisUrl::parse("redis://cache.example.org", error);
  ASSERT_TRUE(url) << error;
  EXPECT_FALSE(url->tls.enabled);
  EXPECT_EQ(url->describe(), "redis://cache.example.org:6379/0");
}

TEST(RedisUrl, DescribeNeverShowsThePassword) {
  std::string error;
  auto url = RedisUrl::parse("redis://app:topsecret@10.0.0.5:6380/2", error);
  ASSERT_TRUE(url);
  EXPECT_EQ(url->describe(), "redis://app@10.0.0.5:6380/2");
  url = RedisUrl::parse("unix://:topsecret@/run/r.sock?db=1", error);
  ASSERT_TRUE(url);
  EXPECT_EQ(url->describe(), "unix:///run/r.sock?db=1");
  url = RedisUrl::parse("redis://[::1]:1", error);
  EXPECT_EQ(url->describe(), "redis://[::1]:1/0");
}

}  // namespace
}  // namespace pgfanout::redis
