// The client message parser (docs/protocol.md): every message type, `ref` echoing, and the
// refusals of malformed input.
#include <gtest/gtest.h>

#include "hub/ClientMessage.hpp"
#include "hub/ServerFrames.hpp"

namespace pgfanout::hub {
namespace {

TEST(ClientMessage, Types) {
  auto p = parse_client_message(R"({"type":"subscribe","topic":"user:7","ref":1})");
  ASSERT_TRUE(p.message);
  EXPECT_EQ(p.message->type, ClientMessageType::Subscribe);
  EXPECT_EQ(p.message->topic, "user:7");
  EXPECT_EQ(p.message->ref, "1");

  p = parse_client_message(
      R"({"type":"publish","topic":"room:a","data":{"x":[1,"two"]},"ref":"r"})");
  ASSERT_TRUE(p.message);
  EXPECT_EQ(p.message->data, R"({"x":[1,"two"]})");
  EXPECT_EQ(p.message->ref, R"("r")");

  p = parse_client_message(
      R"({"type":"call","command":"send","args":{"to":"bob","n":5,"b":true,"z":null,"o":{"a":1}}})");
  ASSERT_TRUE(p.message);
  EXPECT_EQ(p.message->command, "send");
  ASSERT_EQ(p.message->args.size(), 5u);
  EXPECT_EQ(find_arg(*p.message, "to")->kind, ArgValue::Kind::String);
  EXPECT_EQ(find_arg(*p.message, "to")->text, "bob");
  EXPECT_EQ(find_arg(*p.message, "n")->text, "5");
  EXPECT_EQ(find_arg(*p.message, "b")->text, "true");
  EXPECT_EQ(find_arg(*p.message, "z")->kind, ArgValue::Kind::Null);
  EXPECT_EQ(find_arg(*p.message, "o")->kind, ArgValue::Kind::Object);
  EXPECT_EQ(find_arg(*p.message, "missing"), nullptr);

  p = parse_client_message(R"({"type":"login","username":"ann","password":"secret"})");
  ASSERT_TRUE(p.message);
  EXPECT_EQ(p.message->username, "ann");
  p = parse_client_message(R"({"type":"auth","token":"a.b.c"})");
  ASSERT_TRUE(p.message);
  EXPECT_EQ(p.message->token, "a.b.c");
  p = parse_client_message(R"({"type":"ping"})");
  ASSERT_TRUE(p.message);
  EXPECT_EQ(p.message->type, ClientMessageType::Ping);
  p = parse_client_message(R"({"type":"unsubscribe","topic":"x"})");
  ASSERT_TRUE(p.message);
  EXPECT_EQ(p.message->type, ClientMessageType::Unsubscribe);
}

TEST(ClientMessage, SubscribeAfterAWalPosition) {
  auto p = parse_client_message(R"({"type":"subscribe","topic":"items","after":"0/16B3748"})");
  ASSERT_TRUE(p.message) << p.error;
  ASSERT_TRUE(p.message->after);
  EXPECT_EQ(*p.message->after, 0x16B3748u);
  EXPECT_FALSE(parse_client_message(R"({"type":"subscribe","topic":"items"})").message->after);
  for (const char* bad : {R"({"type":"subscribe","topic":"items","after":"1041"})",
                          R"({"type":"subscribe","topic":"items","after":7})",
                          R"({"type":"subscribe","topic":"items","after":"x/y"})"}) {
    auto r = parse_client_message(bad);
    EXPECT_FALSE(r.message) << bad;
    EXPECT_NE(r.error.find("\"after\""), std::string::npos) << r.error;
  }
}

TEST(ClientMessage, Refusals) {
  struct Case {
    const char* text;
    const char* ref;
  };
  for (const Case& c : std::vector<Case>{
           {"", ""},
           {"not json", ""},
           {"[1,2]", ""},
           {R"("string")", ""},
           {R"({})", ""},
           {R"({"type":5})", ""},
           {R"({"type":"nope","ref":3})", "3"},
           {R"({"type":"subscribe","ref":"a"})", R"("a")"},
           {R"({"type":"subscribe","topic":7,"ref":"a"})", R"("a")"},
           {R"({"type":"publish","topic":"x"})", ""},
           {R"({"type":"call"})", ""},
           {R"({"type":"call","command":"x","args":[1]})", ""},
           {R"({"type":"login","username":"a"})", ""},
           {R"({"type":"auth","token":null})", ""},
           {R"({"type":"ping","ref":{"a":1}})", ""},
           {R"({"type":"ping","ref":1.5})", ""},
           {R"({"type":"ping"} trailing)", ""},
       }) {
    auto p = parse_client_message(c.text);
    EXPECT_FALSE(p.message) << c.text;
    EXPECT_EQ(p.error_code, "bad_message") << c.text;
    EXPECT_EQ(p.ref, c.ref) << c.text;
  }
  std::string deep(100, '[');
  EXPECT_FALSE(parse_client_message(R"({"type":"publish","topic":"x","data":)" + deep).message);
  EXPECT_FALSE(
      parse_client_message(R"({"type":"ping","ref":")" + std::string(200, 'x') + "\"}").message);
}

TEST(ServerFrames, Shapes) {
  EXPECT_EQ(event_frame("user:7", "message", R"({"id":1})", "42"),
            R"({"type":"event","topic":"user:7","event":"message","data":{"id":1},"id":42})");
  EXPECT_EQ(event_frame("t", "e", "", ""),
            R"({"type":"event","topic":"t","event":"e","data":null})");
  EXPECT_EQ(event_frame("t", "e", "1", "0/16B3748"),
            R"({"type":"event","topic":"t","event":"e","data":1,"id":"0/16B3748"})");
  EXPECT_EQ(ack_frame("1", "[]"), R"({"type":"ack","ref":1,"result":[]})");
  EXPECT_EQ(ack_frame(""), R"({"type":"ack"})");
  EXPECT_EQ(error_frame(R"("r")", "forbidden", "no \"access\""),
            R"({"type":"error","ref":"r","code":"forbidden","message":"no \"access\""})");
  EXPECT_EQ(resync_frame("t"), R"({"type":"resync","topic":"t"})");
  EXPECT_EQ(pong_frame("7"), R"({"type":"pong","ref":7})");
}

}  // namespace
}  // namespace pgfanout::hub
