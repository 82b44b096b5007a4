// TopicAcl: canonical topic syntax, pattern matching with {claim} and *, deny by default, and
// every spelling by which a user might reach another user's topic.
#include <gtest/gtest.h>

#include "auth/TopicAcl.hpp"

namespace pgfanout::auth {
namespace {

AclEntry entry(const std::string& pattern, bool subscribe, bool publish, bool anonymous = false) {
  AclEntry e;
  std::string error;
  EXPECT_TRUE(TopicPattern::parse(pattern, e.pattern, error)) << error;
  e.subscribe = subscribe;
  e.publish = publish;
  e.anonymous = anonymous;
  return e;
}

TopicAcl chat_acl() {
  return TopicAcl({entry("user:{sub}", true, false), entry("room:*", true, true),
                   entry("news", true, false, /*anonymous=*/true)});
}

TEST(TopicAcl, ValidTopics) {
  for (const char* t : {"a", "user:7", "room:general", "a.b-c_d:E:9", "x:y:z"}) {
    EXPECT_TRUE(valid_topic(t)) << t;
  }
  for (const char* t :
       {"", ":", "user:", ":user", "user::7", "user:7:", "user 7", "user:%37", "user:*", "user/7",
        "user:7\n", "user:\xc3\xa9", "üser:7", "user:7?", "user:{sub}"}) {
    EXPECT_FALSE(valid_topic(t)) << t;
  }
  EXPECT_TRUE(valid_topic(std::string(200, 'a')));
  EXPECT_FALSE(valid_topic(std::string(201, 'a')));
}

TEST(TopicAcl, OwnTopicOnly) {
  auto acl = chat_acl();
  Claims ann{{"sub", "7"}};
  EXPECT_TRUE(acl.check("user:7", TopicAccess::Subscribe, &ann).allowed);
  EXPECT_EQ(acl.check("user:7", TopicAccess::Publish, &ann).code, "forbidden");
  // Another user's topic, by every spelling.
  struct Case {
    const char* topic;
    const char* code;
  };
  for (const Case& c : std::vector<Case>{
           {"user:8", "forbidden"},
           {"USER:7", "forbidden"},  // case: literals match exactly
           {"User:8", "forbidden"},
           {"user:07", "forbidden"},  // the claim is compared as text
           {"user:7.0", "forbidden"},
           {"user:8:7", "forbidden"},  // extra segments
           {"user:7:extra", "forbidden"},
           {"user", "forbidden"},
           {"user:7:", "invalid_topic"},  // trailing separator
           {"user:8:", "invalid_topic"},
           {"user::8", "invalid_topic"},
           {"user:%38", "invalid_topic"},  // percent-encoding
           {"user%3A8", "invalid_topic"},
           {"user:*", "invalid_topic"},             // wildcards are not topics
           {"user:\xef\xbc\x98", "invalid_topic"},  // FULLWIDTH DIGIT EIGHT
           {"user:\xd0\xb0", "invalid_topic"},      // Cyrillic a
           {"user\xef\xbc\x9a"
            "8",
            "invalid_topic"},  // FULLWIDTH COLON
           {" user:8", "invalid_topic"},
           {"user:8 ", "invalid_topic"},
           {"user:8\t", "invalid_topic"},
           {"user/8", "invalid_topic"},
           {"user:{sub}", "invalid_topic"},
       }) {
    auto d = acl.check(c.topic, TopicAccess::Subscribe, &ann);
    EXPECT_FALSE(d.allowed) << c.topic;
    EXPECT_EQ(d.code, c.code) << c.topic;
  }
}

TEST(TopicAcl, ClaimMustBeCanonical) {
  auto acl = chat_acl();
  Claims odd{{"sub", "7:8"}};
  EXPECT_FALSE(acl.check("user:7:8", TopicAccess::Subscribe, &odd).allowed);
  Claims empty{{"sub", ""}};
  EXPECT_FALSE(acl.check("user:", TopicAccess::Subscribe, &empty).allowed);
  Claims none{{"name", "ann"}};
  EXPECT_EQ(acl.check("user:7", TopicAccess::Subscribe, &none).code, "forbidden");
}

TEST(TopicAcl, AnonymousAndWildcards) {
  auto acl = chat_acl();
  Claims ann{{"sub", "7"}};
  EXPECT_TRUE(acl.check("news", TopicAccess::Subscribe, nullptr).allowed);
  EXPECT_TRUE(acl.check("news", TopicAccess::Subscribe, &ann).allowed);
  EXPECT_EQ(acl.check("user:7", TopicAccess::Subscribe, nullptr).code, "forbidden");
  EXPECT_EQ(acl.check("room:general", TopicAccess::Subscribe, nullptr).code, "unauthorized");
  EXPECT_TRUE(acl.check("room:general", TopicAccess::Publish, &ann).allowed);
  EXPECT_FALSE(acl.check("room:general:x", TopicAccess::Subscribe, &ann).allowed);
  EXPECT_FALSE(acl.check("room", TopicAccess::Subscribe, &ann).allowed);
  EXPECT_EQ(acl.check("other", TopicAccess::Subscribe, &ann).code, "forbidden");  // deny by default
  EXPECT_EQ(TopicAcl().check("news", TopicAccess::Subscribe, &ann).code, "forbidden");
}

TEST(TopicAcl, FirstMatchDecides) {
  TopicAcl acl({entry("room:secret", false, false), entry("room:*", true, true)});
  Claims ann{{"sub", "7"}};
  EXPECT_EQ(acl.check("room:secret", TopicAccess::Subscribe, &ann).code, "forbidden");
  EXPECT_TRUE(acl.check("room:open", TopicAccess::Subscribe, &ann).allowed);
}

TEST(TopicAcl, BadPatterns) {
  TopicPattern p;
  std::string error;
  for (const char* bad : {"", "user:", "user::x", "user:{}", "user:{a.b}", "user:x{sub}",
                          "user:{sub}x", "us er", "user:**"}) {
    EXPECT_FALSE(TopicPattern::parse(bad, p, error)) << bad;
  }
}

}  // namespace
}  // namespace pgfanout::auth
