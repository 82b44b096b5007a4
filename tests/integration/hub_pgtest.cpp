// The WebSocket / SSE hub end to end: the real daemon, the chat example's schema in a scratch
// database, Beast WebSocket clients. Covers the protocol, tokens (expired, wrong signature, wrong
// audience, alg none, another algorithm), topic ACLs under hostile spellings, SQL login,
// on_subscribe, commands with hostile arguments, client publish through pg_notify, a slow
// consumer that never reads, SSE resume with Last-Event-ID from the outbox, the Web::Hippie
// endpoints, Origin checks and static files.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <thread>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <gtest/gtest.h>

#include "auth/Jwt.hpp"
#include "support/TestSupport.hpp"
#include "support/WsClient.hpp"

namespace pgfanout {
namespace {

using namespace std::chrono_literals;
using test::BlockingPg;
using test::DaemonProcess;
using test::WsClient;

const std::string kSecret = "hub-test-secret-0123456789-abcdefghij";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::int64_t now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A token for `sub` signed with `key`: the HS256 secret, or a PEM private key for RS256 / ES256 /
// EdDSA.
std::string signed_token(auth::JwtAlgorithm alg, const std::string& key, const std::string& sub,
                         std::int64_t exp_in = 3600, const std::string& aud = "chat") {
  return auth::jwt_sign(alg,
                        R"({"sub":")" + sub + R"(","aud":")" + aud + R"(","exp":)" +
                            std::to_string(now() + exp_in) + "}",
                        key);
}

std::string token(const std::string& sub, std::int64_t exp_in = 3600,
                  const std::string& aud = "chat") {
  return signed_token(auth::JwtAlgorithm::HS256, kSecret, sub, exp_in, aud);
}

// An unsigned token (`alg: none`).
std::string unsigned_token(const std::string& sub) {
  return auth::base64url_encode(R"({"alg":"none"})") + "." +
         auth::base64url_encode(R"({"sub":")" + sub + R"(","aud":"chat"})") + ".";
}

WsClient::Headers bearer(const std::string& t) {
  return {{"Authorization", "Bearer " + t}};
}

// The HTTP status of a WebSocket upgrade refused for its headers (0 when it was accepted).
int refused_upgrade(int port, const WsClient::Headers& h) {
  WsClient c(port, "/ws", h);
  EXPECT_FALSE(c.open());
  return c.open() ? 0 : c.http_status();
}

// The status of GET /events?topic=TOPIC with `Authorization: Bearer TOKEN`.
int events_status(int port, const std::string& topic, const std::string& t) {
  test::HttpStream sse(port, "GET /events?topic=" + topic +
                                 " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + t + "\r\n\r\n");
  EXPECT_TRUE(sse.wait_for("\r\n\r\n")) << sse.text();
  return sse.status();
}

// One sample of a /metrics text, e.g. `pgfanout_hub_auth_total{result="expired"}`; 0 if absent.
double sample(const std::string& metrics_text, const std::string& series) {
  auto at = metrics_text.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  return std::stod(metrics_text.substr(at + series.size() + 2));
}

// Logs `c` in as the chat example's ann, after checking that a wrong password is refused;
// the reply to the good login (nothing when a reply was missing or wrong).
std::optional<std::string> log_in_as_ann(WsClient& c) {
  auto fail = c.request(R"({"type":"login","username":"ann","password":"wrong-password"})");
  EXPECT_TRUE(fail);
  if (!fail) return std::nullopt;
  EXPECT_NE(fail->find(R"("code":"login_failed")"), std::string::npos) << *fail;
  return c.request(R"({"type":"login","username":"ann","password":"secret-ann"})");
}

class Hub : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    db = new test::ScratchDatabase("hub");
    auto outside = std::filesystem::path(test::write_temp_file("outside.txt", "private"));
    static_dir = (outside.parent_path() / "www").string();
    std::filesystem::create_directories(static_dir);
    std::ofstream(static_dir + "/index.html") << "<h1>chat</h1>";
    std::ofstream(static_dir + "/.hidden") << "hidden";
    std::filesystem::create_symlink(outside, static_dir + "/escape.txt");
    // A second directory: looked up after the first (its index.html is shadowed).
    std::filesystem::create_directories(static_dir + "2");
    std::ofstream(static_dir + "2/index.html") << "<h1>shadowed</h1>";
    std::ofstream(static_dir + "2/client.js") << "export {};";
    std::filesystem::create_symlink(outside, static_dir + "2/escape2.txt");
    config_path = test::write_temp_file("hub.yaml", config_text());
    BlockingPg s(db->dsn());
    s.exec(read_file(PGFANOUT_SOURCE_DIR "/examples/chat/schema.sql"));
    s.exec("CREATE TABLE public.items (id int PRIMARY KEY, v text)");
    auto [code, out] = test::run_pgfanout({"install", "--config", config_path});
    ASSERT_EQ(code, 0) << out;
    daemon = new DaemonProcess({"run", "--config", config_path});
    ASSERT_TRUE(daemon->wait_for_output("ready")) << daemon->output();
    port = daemon->http_port();
    ann = s.value("SELECT user_id FROM chat.register('ann', 'secret-ann', 'ann@example.com')")
              .value();
    bob = s.value("SELECT user_id FROM chat.register('bob', 'secret-bob', 'bob@example.com')")
              .value();
    s.value("SELECT user_id FROM chat.register('cyd', 'secret-cyd', 'cyd@example.com')");
    s.exec(
        "SELECT chat.set_friends_only((SELECT id FROM chat.users WHERE username = 'cyd'), "
        "true)");
  }
  static void TearDownTestSuite() {
    delete daemon;
    delete db;
  }

  static std::string config_text() {
    return "postgres:\n  dsn: \"" + db->dsn() +
           "\"\n  reconnect_min: 50ms\n  reconnect_max: 500ms\n"
           "http:\n  listen: 127.0.0.1:0\n  allowed_origins: [\"https://chat.example\"]\n"
           "  static: [\"" +
           static_dir + "\", \"" + static_dir +
           "2\"]\n"
           "outbox:\n  poll_interval: 200ms\n"
           "auth:\n  jwt:\n    secret: \"" +
           kSecret +
           "\"\n    audience: chat\n"
           "  login:\n    sql: \"SELECT user_id, username FROM chat.login($1, $2)\"\n"
           "    subject: user_id\n    ttl: 1h\n    attempts_per_minute: 3\n"
           "topics:\n"
           "  - pattern: \"user:{sub}\"\n    allow: [subscribe]\n"
           "    on_subscribe:\n      sql: \"SELECT id, from_username, body FROM chat.unread($1)\"\n"
           "      params: [sub]\n"
           "  - pattern: \"room:*\"\n    allow: [subscribe, publish]\n"
           "  - pattern: \"lobby\"\n    allow: [subscribe, publish]\n    anonymous: true\n"
           "  - pattern: \"public\"\n    allow: [subscribe]\n    anonymous: true\n"
           "  - pattern: \"items\"\n    allow: [subscribe]\n    anonymous: true\n"
           "commands:\n"
           "  send:\n    sql: \"SELECT * FROM chat.send($1, $2, $3)\"\n"
           "    params: [$user, to, body]\n    timeout: 2s\n"
           "  echo:\n    sql: \"SELECT $1::text AS value, length($1) AS n\"\n    params: [value]\n"
           "  add:\n    sql: \"SELECT $1::int + $2::int AS sum\"\n    params: [a, b]\n"
           "  nap:\n    sql: \"SELECT pg_sleep($1::float8)\"\n    params: [seconds]\n"
           "    timeout: 200ms\n"
           "  doze:\n    sql: \"SELECT pg_sleep($1::float8)::text AS slept\"\n"
           "    params: [seconds]\n    timeout: 3s\n"
           "  settings:\n    sql: \"SELECT current_setting('statement_timeout') AS timeout, "
           "transaction_timestamp() < statement_timestamp() AS in_transaction\"\n"
           "    timeout: 4s\n"
           "  default_settings:\n    sql: \"SELECT current_setting('statement_timeout') AS "
           "timeout\"\n"
           "  whoami:\n    sql: \"SELECT $1::text AS sub\"\n    params: [$user]\n"
           "  hello:\n    sql: \"SELECT 'hello'::text AS greeting\"\n    anonymous: true\n"
           "hub:\n  send_queue_size: 256KiB\n  idle_timeout: 10s\n  sse_heartbeat: 300ms\n"
           "  hippie_ping: 500ms\n  commands_per_second: 50\n"
           "watch:\n"
           "  - table: chat.messages\n    channel: chat_message\n"
           "    columns: [id, from_user, from_username, to_user, body]\n    ops: [INSERT]\n"
           "  - table: public.items\n    channel: items_changed\n    durable: true\n"
           "rules:\n"
           "  - name: inbox\n    channel: chat_message\n    actions:\n"
           "      - push: {topic: \"user:{to_user}\", event: message}\n"
           "  - name: client-publish\n    channel: pgfanout_publish\n    actions:\n"
           "      - push: {topic: \"{topic}\", event: publish, data: \"{data}\"}\n"
           "  - name: broadcast\n    channel: broadcast\n    actions:\n"
           "      - push: {topic: \"public\", event: news}\n"
           "  - name: items\n    channel: items_changed\n    durable: true\n    actions:\n"
           "      - push: {topic: items, event: item}\n";
  }

  static std::string metrics() { return test::http_get(port, "/metrics").body; }

  static test::ScratchDatabase* db;
  static DaemonProcess* daemon;
  static std::string config_path;
  static std::string static_dir;
  static int port;
  static std::string ann, bob;
};

test::ScratchDatabase* Hub::db = nullptr;
DaemonProcess* Hub::daemon = nullptr;
std::string Hub::config_path;
std::string Hub::static_dir;
int Hub::port = 0;
std::string Hub::ann;
std::string Hub::bob;

TEST_F(Hub, PingSubscribeAndPush) {
  WsClient c(port);
  ASSERT_TRUE(c.open()) << c.http_status();
  auto pong = c.request(R"({"type":"ping"})");
  ASSERT_TRUE(pong);
  EXPECT_EQ(*pong, R"({"type":"pong","ref":1})");
  c.send("not json");
  auto err = c.receive();
  ASSERT_TRUE(err);
  EXPECT_NE(err->find(R"("code":"bad_message")"), std::string::npos) << *err;
  auto e2 = c.request(R"({"type":"frobnicate"})");
  ASSERT_TRUE(e2);
  EXPECT_NE(e2->find("bad_message"), std::string::npos);

  auto ack = c.request(R"({"type":"subscribe","topic":"public"})");
  ASSERT_TRUE(ack);
  EXPECT_EQ(*ack, R"({"type":"ack","ref":3})");
  BlockingPg s(db->dsn());
  s.notify("broadcast", R"({"headline":"hello"})");
  auto ev = c.receive_containing("\"event\"");
  ASSERT_TRUE(ev) << daemon->output();
  EXPECT_EQ(*ev, R"({"type":"event","topic":"public","event":"news","data":{"headline":"hello"}})");
  s.notify("broadcast", "plain text");
  ev = c.receive_containing("\"event\"");
  ASSERT_TRUE(ev);
  EXPECT_NE(ev->find(R"("data":"plain text")"), std::string::npos) << *ev;

  EXPECT_EQ(*c.request(R"({"type":"unsubscribe","topic":"public"})"), R"({"type":"ack","ref":4})");
  s.notify("broadcast", R"({"headline":"gone"})");
  EXPECT_FALSE(c.receive(500ms));
  EXPECT_NE(metrics().find("pgfanout_subscribers "), std::string::npos);
}

TEST_F(Hub, TokensAreChecked) {
  auto refused = [](const WsClient::Headers& h) { return refused_upgrade(port, h); };
  EXPECT_EQ(refused(bearer(token(ann, -120))), 401);             // expired beyond the leeway
  EXPECT_EQ(refused(bearer(token(ann, 3600, "billing"))), 401);  // wrong audience
  EXPECT_EQ(refused(bearer(auth::jwt_sign(auth::JwtAlgorithm::HS256,
                                          R"({"sub":")" + ann + R"(","aud":"chat"})",
                                          "a-different-secret-of-32-bytes-or-more"))),
            401);                                        // wrong signature
  EXPECT_EQ(refused(bearer(unsigned_token("1"))), 401);  // alg none
  EXPECT_EQ(refused(bearer(auth::jwt_sign(auth::JwtAlgorithm::HS256,
                                          R"({"sub":")" + ann + R"(","aud":"chat"})", kSecret,
                                          R"({"alg":"HS384"})"))),
            401);  // another algorithm

  // A valid token in Sec-WebSocket-Protocol: the chosen subprotocol is echoed.
  WsClient ok(port, "/ws", {{"Sec-WebSocket-Protocol", "bearer, " + token(ann)}});
  ASSERT_TRUE(ok.open());
  EXPECT_EQ(ok.subprotocol(), "bearer");
  auto who = ok.request(R"({"type":"call","command":"whoami"})");
  ASSERT_TRUE(who);
  EXPECT_NE(who->find(R"("result":[{"sub":")" + ann + "\"}]"), std::string::npos) << *who;

  // A token as the first message.
  WsClient late(port);
  auto bad = late.request(R"({"type":"auth","token":")" + token(ann, -120) + "\"}");
  ASSERT_TRUE(bad);
  EXPECT_NE(bad->find(R"("code":"unauthorized")"), std::string::npos) << *bad;
  EXPECT_NE(late.request(R"({"type":"auth","token":")" + token(ann) + "\"}")->find("ack"),
            std::string::npos);
  EXPECT_NE(late.request(R"({"type":"auth","token":")" + token(bob) + "\"}")
                ->find("already_authenticated"),
            std::string::npos);
  // Not from the query string by default.
  EXPECT_FALSE(WsClient(port, "/ws?access_token=" + token(ann))
                   .request(R"({"type":"call","command":"whoami"})")
                   ->find("ack") != std::string::npos);
}

TEST_F(Hub, OtherUsersTopicsAreRefusedByAnySpelling) {
  WsClient c(port, "/ws", bearer(token(ann)));
  ASSERT_TRUE(c.open());
  struct Case {
    std::string topic;
    const char* code;
  };
  std::vector<Case> cases = {
      {"user:" + bob, "forbidden"},
      {"USER:" + bob, "forbidden"},
      {"user:0" + bob, "forbidden"},
      {"user:" + bob + ":x", "forbidden"},
      {"user:" + ann + ":x", "forbidden"},
      {"user:" + bob + ":", "invalid_topic"},
      {"user:%3" + bob, "invalid_topic"},
      {"user%3A" + bob, "invalid_topic"},
      {"user:*", "invalid_topic"},
      {"user:\\uff18", "invalid_topic"},  // JSON escape of a fullwidth digit
      {"user\\uff1a" + bob, "invalid_topic"},
      {"user:" + bob + " ", "invalid_topic"},
      {"secret", "forbidden"},
  };
  for (const auto& k : cases) {
    auto r = c.request(R"({"type":"subscribe","topic":")" + k.topic + "\"}");
    ASSERT_TRUE(r) << k.topic;
    EXPECT_NE(r->find(std::string(R"("code":")") + k.code + "\""), std::string::npos)
        << k.topic << " -> " << *r;
  }
  // Anonymous clients cannot subscribe to user topics or to authenticated rooms.
  WsClient anon(port);
  EXPECT_NE(anon.request(R"({"type":"subscribe","topic":"user:)" + ann + "\"}")->find("forbidden"),
            std::string::npos);
  EXPECT_NE(anon.request(R"({"type":"subscribe","topic":"room:a"})")->find("unauthorized"),
            std::string::npos);
  // SSE: same rules, percent-decoding happens once and the result must still be canonical.
  EXPECT_EQ(test::http_get(port, "/events?topic=user%3A" + bob).status, 403);
  EXPECT_EQ(test::http_get(port, "/events?topic=user%253A" + bob).status, 403);
}

TEST_F(Hub, LoginOnSubscribeAndLivePush) {
  BlockingPg s(db->dsn());
  // Bob writes to Ann while she is away.
  s.exec("SELECT chat.send(" + bob + ", 'ann', 'while you were away')");

  WsClient c(port);
  auto ok = log_in_as_ann(c);
  ASSERT_TRUE(ok);
  EXPECT_NE(ok->find(R"("token":")"), std::string::npos) << *ok;
  EXPECT_NE(ok->find(R"("username":"ann")"), std::string::npos) << *ok;

  auto ack = c.request(R"({"type":"subscribe","topic":"user:)" + ann + "\"}");
  ASSERT_TRUE(ack);
  EXPECT_NE(ack->find("\"ack\""), std::string::npos) << *ack;
  auto backlog = c.receive_containing("while you were away");
  ASSERT_TRUE(backlog) << daemon->output();
  EXPECT_NE(backlog->find(R"("from_username":"bob")"), std::string::npos) << *backlog;

  // Bob sends through a command; the watch trigger's NOTIFY comes back as a push.
  WsClient b(port, "/ws", bearer(token(bob)));
  auto sent = b.request(R"({"type":"call","command":"send","args":{"to":"ann","body":"live!"}})");
  ASSERT_TRUE(sent);
  EXPECT_NE(sent->find(R"("message_id":)"), std::string::npos) << *sent;
  auto live = c.receive_containing("live!");
  ASSERT_TRUE(live) << daemon->output();
  EXPECT_NE(live->find(R"("event":"message")"), std::string::npos) << *live;
  EXPECT_NE(live->find(R"("to_user":)" + ann), std::string::npos) << *live;

  // A user-facing error from the database reaches the page.
  auto refused = b.request(R"({"type":"call","command":"send","args":{"to":"cyd","body":"hi"}})");
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->find(R"("code":"command_failed")"), std::string::npos) << *refused;
  EXPECT_NE(refused->find("refused: cyd accepts messages only from friends"), std::string::npos)
      << *refused;

  // Logins are rate-limited per connection (3 per minute here).
  WsClient d(port);
  int limited = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = d.request(R"({"type":"login","username":"ann","password":"nope-nope"})");
    if (r && r->find("rate_limited") != std::string::npos) ++limited;
  }
  EXPECT_GE(limited, 2);
}

TEST_F(Hub, CommandsTakeHostileArgumentsAsData) {
  WsClient c(port, "/ws", bearer(token(ann)));
  ASSERT_TRUE(c.open());
  auto call = [&](const std::string& args, const char* command = "echo") {
    return c
        .request(std::string(R"({"type":"call","command":")") + command + R"(","args":)" + args +
                 "}")
        .value_or("(no reply)");
  };
  std::string injection = R"('; DROP TABLE chat.users; --)";
  auto r = call(R"({"value":"'; DROP TABLE chat.users; --"})");
  EXPECT_NE(r.find(R"("value":")" + injection + "\""), std::string::npos) << r;
  BlockingPg s(db->dsn());
  EXPECT_EQ(s.value("SELECT count(*) FROM chat.users WHERE username = 'ann'"), "1");
  r = call(R"({"value":"$1 $2 \\\" \\\\ ' \" ; SELECT 1"})");
  EXPECT_NE(r.find("\"ack\""), std::string::npos) << r;

  EXPECT_NE(call(R"({"a":1,"b":"x"})", "add").find("invalid input syntax for type integer"),
            std::string::npos);
  EXPECT_NE(call(R"({"a":1,"b":2})", "add").find(R"("sum":3)"), std::string::npos);
  EXPECT_NE(call(R"({"a":{"x":1},"b":2})", "add").find("command_failed"), std::string::npos);
  EXPECT_NE(call(R"({"a":1})", "add").find(R"(missing argument \"b\")"), std::string::npos);
  EXPECT_NE(call(R"({"a":1,"b":2,"c":3})", "add").find("bad_args"), std::string::npos);
  EXPECT_NE(call(R"({"value":"a\u0000b"})").find("NUL"), std::string::npos);
  EXPECT_NE(call(R"({"value":null})").find(R"("value":null)"), std::string::npos);
  std::string big(60'000, 'x');
  EXPECT_NE(call(R"({"value":")" + big + "\"}").find(R"("n":60000)"), std::string::npos);
  EXPECT_NE(call(R"({"seconds":5})", "nap").find(R"("code":"timeout")"), std::string::npos);
  EXPECT_NE(call(R"({})", "nope").find("unknown_command"), std::string::npos);
  // The next call on that connection still runs with its own timeout.
  EXPECT_NE(call(R"({"a":2,"b":2})", "add").find(R"("sum":4)"), std::string::npos);

  WsClient anon(port);
  EXPECT_NE(anon.request(R"({"type":"call","command":"echo","args":{"value":"x"}})")
                ->find("unauthorized"),
            std::string::npos);
  EXPECT_NE(anon.request(R"({"type":"call","command":"hello"})")->find("hello"), std::string::npos);

  // A message over hub.max_message_size closes the connection (1009).
  WsClient huge(port, "/ws", bearer(token(ann)));
  huge.send(R"({"type":"call","command":"echo","args":{"value":")" + std::string(70'000, 'y') +
            "\"}}");
  EXPECT_FALSE(huge.receive(3s));
  EXPECT_TRUE(huge.closed());
  EXPECT_EQ(huge.close_code(), 1009);
}

TEST_F(Hub, EachCommandRunsWithItsOwnTimeout) {
  WsClient c(port, "/ws", bearer(token(ann)));
  ASSERT_TRUE(c.open());
  auto call = [&](const char* command, const std::string& args = "{}") {
    return c
        .request(std::string(R"({"type":"call","command":")") + command + R"(","args":)" + args +
                 "}")
        .value_or("(no reply)");
  };
  // Calls one after another go to the same pooled connection (the least busy, the first when
  // all are idle). nap's 200ms stops its sleep; doze, with 3s, sleeps longer than that right after
  // on that connection.
  for (int i = 0; i < 2; ++i) {
    auto r = call("nap", R"({"seconds":5})");
    EXPECT_NE(r.find(R"("code":"timeout")"), std::string::npos) << r;
    r = call("doze", R"({"seconds":0.5})");
    EXPECT_NE(r.find(R"("result":[{"slept":""}])"), std::string::npos) << r;
  }
  // Each statement sees its own timeout, set in a transaction begun before it (so it ends with the
  // transaction): after nap and doze, settings sees 4s and a command without timeout the default.
  auto r = call("settings");
  EXPECT_NE(r.find(R"("result":[{"timeout":"4s","in_transaction":true}])"), std::string::npos) << r;
  r = call("default_settings");
  EXPECT_NE(r.find(R"("result":[{"timeout":"5s"}])"), std::string::npos) << r;
  r = call("nap", R"({"seconds":5})");
  EXPECT_NE(r.find(R"("code":"timeout")"), std::string::npos) << r;
  r = call("default_settings");
  EXPECT_NE(r.find(R"("result":[{"timeout":"5s"}])"), std::string::npos) << r;
  // A failed statement leaves no transaction open behind it.
  EXPECT_NE(call("add", R"({"a":1,"b":"x"})").find("command_failed"), std::string::npos);
  EXPECT_NE(call("add", R"({"a":2,"b":3})").find(R"("sum":5)"), std::string::npos);
}

TEST_F(Hub, CommandRateLimit) {
  WsClient c(port, "/ws", bearer(token(ann)));
  for (int i = 0; i < 150; ++i) {
    c.send(R"({"type":"call","command":"whoami","ref":)" + std::to_string(1000 + i) + "}");
  }
  int limited = 0, acked = 0;
  for (int i = 0; i < 150; ++i) {
    auto m = c.receive();
    if (!m) break;
    if (m->find("rate_limited") != std::string::npos) ++limited;
    if (m->find("\"ack\"") != std::string::npos) ++acked;
  }
  EXPECT_GT(limited, 0);
  EXPECT_GE(acked, 100);  // the burst (2 x 50/s) goes through
}

TEST_F(Hub, PublishGoesThroughPostgres) {
  WsClient a(port, "/ws", bearer(token(ann)));
  WsClient b(port, "/ws", bearer(token(bob)));
  ASSERT_NE(a.request(R"({"type":"subscribe","topic":"room:general"})")->find("ack"),
            std::string::npos);
  ASSERT_NE(b.request(R"({"type":"subscribe","topic":"room:general"})")->find("ack"),
            std::string::npos);
  auto ack = a.request(R"({"type":"publish","topic":"room:general","data":{"text":"hi all"}})");
  ASSERT_TRUE(ack);
  EXPECT_NE(ack->find("\"ack\""), std::string::npos) << *ack;
  auto got = b.receive_containing("hi all");
  ASSERT_TRUE(got) << daemon->output();
  EXPECT_EQ(
      *got,
      R"({"type":"event","topic":"room:general","event":"publish","data":{"text":"hi all"}})");
  // The publisher's own copy may have come before its ack.
  bool own = false;
  for (const auto& m : a.skipped) own = own || m.find("hi all") != std::string::npos;
  EXPECT_TRUE(own || a.receive_containing("hi all"));
  // Publishing where only subscribing is allowed, and data too big for NOTIFY.
  EXPECT_NE(a.request(R"({"type":"publish","topic":"public","data":1})")->find("forbidden"),
            std::string::npos);
  EXPECT_NE(
      a.request(R"({"type":"publish","topic":"room:x","data":")" + std::string(9000, 'z') + "\"}")
          ->find("payload_too_large"),
      std::string::npos);
}

TEST_F(Hub, SlowConsumerIsClosedWithoutSlowingOthers) {
  WsClient slow(port, "/ws", {}, 4096);
  ASSERT_NE(slow.request(R"({"type":"subscribe","topic":"public"})")->find("ack"),
            std::string::npos);
  WsClient fast(port);
  ASSERT_NE(fast.request(R"({"type":"subscribe","topic":"public"})")->find("ack"),
            std::string::npos);
  // Enough to fill the slow client's socket buffers and its queue many times over. The writer
  // stays at most 50 messages (100 KB) ahead of the reading client, so only the slow one can
  // fall behind by more than its 256 KiB queue.
  const int n = 5000;
  std::string body(2000, 'p');
  std::atomic<int> received{0};
  std::thread writer([&] {
    BlockingPg w(db->dsn());
    for (int i = 0; i < n; ++i) {
      auto deadline = std::chrono::steady_clock::now() + 10s;
      while (i - received.load() > 50 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
      }
      w.notify("broadcast", R"({"i":)" + std::to_string(i) + R"(,"pad":")" + body + "\"}");
    }
  });
  while (received < n) {
    auto m = fast.receive(5s);
    if (!m) break;
    if (m->find("\"pad\"") != std::string::npos) ++received;
  }
  writer.join();
  EXPECT_EQ(received.load(), n);
  // 10 MB is far past the slow client's buffers and 256 KiB queue: it was closed.
  int got = 0;
  while (slow.receive(3s)) ++got;
  EXPECT_TRUE(slow.closed());
  EXPECT_LT(got, n);
  EXPECT_TRUE(test::wait_until([] {
    return metrics().find(R"(pgfanout_subscribers_dropped_total{reason="slow"} 0)") ==
           std::string::npos;
  }));
}

TEST_F(Hub, SseDeliversAndResumesFromTheOutbox) {
  test::HttpStream sse(port,
                       "GET /events?topic=items HTTP/1.1\r\nHost: x\r\n"
                       "Accept: text/event-stream\r\n\r\n");
  ASSERT_TRUE(sse.wait_for("retry: 2000\n\n"));
  EXPECT_EQ(sse.status(), 200);
  EXPECT_NE(sse.text().find("Content-Type: text/event-stream"), std::string::npos);
  BlockingPg s(db->dsn());
  // The daemon trims consumed events 5 s after it starts; outbox.keep (10 minutes) keeps the ones
  // this test resumes from, however slowly the machine runs it.
  s.exec("INSERT INTO public.items VALUES (1, 'one')");
  ASSERT_TRUE(sse.wait_for(R"("v":"one")")) << sse.text() << daemon->output();
  std::smatch m;
  std::string text = sse.text();
  ASSERT_TRUE(std::regex_search(text, m, std::regex(R"(id: (\d+)\ndata: \{"type":"event")")))
      << text;
  std::string first_id = m[1];
  // Idle: heartbeats.
  EXPECT_TRUE(sse.wait_for(": heartbeat\n\n", 3s));

  s.exec("INSERT INTO public.items VALUES (2, 'two')");
  s.exec("INSERT INTO public.items VALUES (3, 'three')");
  // Let the live stream pass them (the reader acknowledges them), then resume after the first.
  ASSERT_TRUE(sse.wait_for(R"("v":"three")"));
  test::HttpStream resumed(port, "GET /events?topic=items HTTP/1.1\r\nHost: x\r\nLast-Event-ID: " +
                                     first_id + "\r\n\r\n");
  ASSERT_TRUE(resumed.wait_for(R"("v":"three")")) << resumed.text() << daemon->output();
  EXPECT_NE(resumed.text().find(R"("v":"two")"), std::string::npos);
  EXPECT_EQ(resumed.text().find(R"("v":"one")"), std::string::npos);
  // Regression: ids are not commit order. A takes its transaction id first; B then inserts and
  // commits, taking the smaller outbox id; then A inserts and commits. Live delivery follows (txid,
  // id): A's event first, then B's. Resuming after A's event must replay B's even though B's id is
  // smaller.
  BlockingPg a(db->dsn()), b(db->dsn());
  a.exec("BEGIN");
  a.exec("SELECT pg_current_xact_id()");
  b.exec("INSERT INTO public.items VALUES (4, 'four-b')");
  a.exec("INSERT INTO public.items VALUES (5, 'five-a')");
  a.exec("COMMIT");
  ASSERT_TRUE(sse.wait_for(R"("v":"four-b")")) << sse.text();
  text = sse.text();
  ASSERT_LT(text.find(R"("v":"five-a")"), text.find(R"("v":"four-b")"))
      << "live order is (txid, id)";
  ASSERT_TRUE(
      std::regex_search(text, m, std::regex(R"(id: (\d+)\ndata: \{"type":"event"[^\n]*"five-a")")))
      << text;
  test::HttpStream after_a(port, "GET /events?topic=items HTTP/1.1\r\nHost: x\r\nLast-Event-ID: " +
                                     std::string(m[1]) + "\r\n\r\n");
  EXPECT_TRUE(after_a.wait_for(R"("v":"four-b")")) << after_a.text();
  // Resuming after an event the outbox no longer holds cannot replay the gap: resync.
  test::HttpStream trimmed(port,
                           "GET /events?topic=items HTTP/1.1\r\nHost: x\r\nLast-Event-ID: "
                           "999999\r\n\r\n");
  EXPECT_TRUE(trimmed.wait_for(R"({"type":"resync","topic":"items"})")) << trimmed.text();
  // A topic no durable rule pushes cannot be resumed: the client is told to resync.
  test::HttpStream gap(port,
                       "GET /events?topic=public HTTP/1.1\r\nHost: x\r\n"
                       "Last-Event-ID: 5\r\n\r\n");
  EXPECT_TRUE(gap.wait_for(R"({"type":"resync","topic":"public"})"));
}

// A resume larger than the send queue (256 KiB here) goes out in parts: the stream ends after
// what fits, and a client that connects again with the last id it got, as EventSource does, gets
// every event once. Sent whole, it would overflow the queue at once and be closed as slow before
// anything went out, on every attempt.
TEST_F(Hub, ALargeResumeGoesOutInParts) {
  test::HttpStream live(port, "GET /events?topic=items HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(live.wait_for("retry: 2000\n\n"));
  BlockingPg s(db->dsn());
  s.exec("INSERT INTO public.items VALUES (1000, 'start')");
  ASSERT_TRUE(live.wait_for(R"("v":"start")")) << live.text();
  std::smatch m;
  std::string text = live.text();
  ASSERT_TRUE(
      std::regex_search(text, m, std::regex(R"(id: (\d+)\ndata: \{"type":"event"[^\n]*"start")")))
      << text;
  std::string from = m[1];
  // 800 events of about 560 bytes on the wire: about 450 KB.
  const int n = 800;
  s.exec("INSERT INTO public.items SELECT g, repeat('x', 500) || g FROM generate_series(1001, " +
         std::to_string(1000 + n) + ") g");
  const double parts_before =
      sample(metrics(), R"(pgfanout_subscribers_dropped_total{reason="resume"})");

  std::map<std::string, int> ids;
  int connections = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (static_cast<int>(ids.size()) < n && std::chrono::steady_clock::now() < deadline) {
    test::HttpStream resumed(port,
                             "GET /events?topic=items HTTP/1.1\r\nHost: x\r\n"
                             "Last-Event-ID: " +
                                 from + "\r\n\r\n");
    ++connections;
    // A part ends its stream; the last part leaves it open (live), so this waits it out.
    resumed.wait_closed(3s);
    const std::string got = resumed.text();
    const std::regex id_line(R"(\nid: (\d+)\n)");
    for (auto it = std::sregex_iterator(got.begin(), got.end(), id_line);
         it != std::sregex_iterator(); ++it) {
      ++ids[(*it)[1]];
      from = (*it)[1];
    }
  }
  EXPECT_EQ(static_cast<int>(ids.size()), n) << "after " << connections << " connections";
  for (const auto& [id, count] : ids) EXPECT_EQ(count, 1) << "event " << id << " sent again";
  EXPECT_GE(connections, 2) << "the resume should not fit the send queue at once";
  EXPECT_GE(sample(metrics(), R"(pgfanout_subscribers_dropped_total{reason="resume"})"),
            parts_before + 1);
}

TEST_F(Hub, HippieEndpoints) {
  WsClient ws(port, "/_hippie/ws/public");
  ASSERT_TRUE(ws.open()) << ws.http_status();
  auto hello = ws.receive();
  ASSERT_TRUE(hello);
  EXPECT_NE(hello->find(R"("type":"hippie.pipe.set_client_id","client_id":")"), std::string::npos);
  test::HttpStream mxhr(port, "GET /_hippie/mxhr/public HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(mxhr.wait_for("hippie.pipe.set_client_id"));
  EXPECT_NE(mxhr.text().find(R"(multipart/mixed; boundary="|||")"), std::string::npos);

  auto first = test::http_get(port, "/_hippie/poll/public");
  ASSERT_EQ(first.status, 200);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(first.body, m, std::regex(R"re("client_id":"([0-9a-f]+)")re")))
      << first.body;
  std::string client_id = m[1];

  BlockingPg s(db->dsn());
  s.notify("broadcast", R"({"headline":"hippie"})");
  auto msg = ws.receive_containing("hippie\"");
  ASSERT_TRUE(msg);
  EXPECT_EQ(*msg, R"({"headline":"hippie"})");
  EXPECT_TRUE(mxhr.wait_for(R"({"headline":"hippie"})"));
  auto polled = test::http_get(port, "/_hippie/poll/public?client_id=" + client_id);
  EXPECT_EQ(polled.body, R"([{"headline":"hippie"}])");
  // Nothing new: the poll waits, then answers with a ping.
  auto idle = test::http_get(port, "/_hippie/poll/public?client_id=" + client_id);
  EXPECT_EQ(idle.body, R"([{"type":"ping"}])");
  EXPECT_TRUE(ws.receive_containing(R"({"type":"ping"})", 3s));

  // Publish: through PostgreSQL, to the Hippie subscribers of "lobby".
  WsClient lobby(port, "/_hippie/ws/lobby");
  ASSERT_TRUE(lobby.receive());
  const std::string form = "message=%7B%22say%22%3A%22yo%22%7D";
  test::HttpStream pub(port,
                       "POST /_hippie/pub/lobby HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       "application/x-www-form-urlencoded\r\nContent-Length: " +
                           std::to_string(form.size()) + "\r\n\r\n" + form);
  EXPECT_TRUE(pub.wait_for(R"({"success":true})")) << pub.text();
  auto said = lobby.receive_containing("say");
  ASSERT_TRUE(said);
  EXPECT_EQ(*said, R"({"say":"yo"})");
  // The same ACLs: an authenticated-only room, a subscribe-only topic.
  EXPECT_EQ(test::http_get(port, "/_hippie/poll/room:a").status, 401);
  EXPECT_EQ(WsClient(port, "/_hippie/ws/user:" + ann).http_status(), 403);
  test::HttpStream pub2(port,
                        "POST /_hippie/pub/public HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n"
                        "message=1");
  EXPECT_TRUE(pub2.wait_for("403"));
}

TEST_F(Hub, OriginsAndStaticFiles) {
  WsClient evil(port, "/ws", {{"Origin", "https://evil.example"}});
  EXPECT_FALSE(evil.open());
  EXPECT_EQ(evil.http_status(), 403);
  WsClient good(port, "/ws", {{"Origin", "https://chat.example"}});
  EXPECT_TRUE(good.open());

  auto page = test::http_get(port, "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.body, "<h1>chat</h1>");
  EXPECT_NE(page.headers.find("text/html"), std::string::npos);
  EXPECT_EQ(test::http_get(port, "/index.html").status, 200);
  auto second = test::http_get(port, "/client.js");  // from the second directory
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, "export {};");
  EXPECT_NE(second.headers.find("text/javascript"), std::string::npos);
  for (const char* bad : {"/../hub.yaml", "/%2e%2e/hub.yaml", "/escape.txt", "/escape2.txt",
                          "/.hidden", "/..%2fhub.yaml", "/nope.html"}) {
    EXPECT_EQ(test::http_get(port, bad).status, 404) << bad;
  }
  EXPECT_EQ(test::http_get(port, "/healthz").status, 200);
}

// RS256, ES256 and EdDSA over the wire, and logins that mint such tokens: a daemon per algorithm
// with a key pair made here, on a database with the chat example's users.
struct KeyPair {
  std::string private_pem;
  std::string public_pem;
};

KeyPair make_keys(auth::JwtAlgorithm alg) {
  EVP_PKEY* key = alg == auth::JwtAlgorithm::RS256 ? EVP_RSA_gen(2048)
                  : alg == auth::JwtAlgorithm::ES256
                      ? EVP_EC_gen("P-256")
                      : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  KeyPair k;
  auto pem = [](auto write) {
    BIO* bio = BIO_new(BIO_s_mem());
    write(bio);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string text(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return text;
  };
  k.private_pem =
      pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
  k.public_pem = pem([&](BIO* b) { PEM_write_bio_PUBKEY(b, key); });
  EVP_PKEY_free(key);
  return k;
}

class HubKeys : public ::testing::TestWithParam<auth::JwtAlgorithm> {
 public:
  static void SetUpTestSuite() {
    db = new test::ScratchDatabase("hubkeys");
    BlockingPg s(db->dsn());
    s.exec(read_file(PGFANOUT_SOURCE_DIR "/examples/chat/schema.sql"));
    ann = s.value("SELECT user_id FROM chat.register('ann', 'secret-ann', 'ann@example.com')")
              .value();
  }
  static void TearDownTestSuite() { delete db; }

  void SetUp() override {
    keys = make_keys(GetParam());
    auto public_file = test::write_temp_file("public.pem", keys.public_pem);
    auto private_file = test::write_temp_file("private.pem", keys.private_pem);
    auto config = test::write_temp_file(
        "hub.yaml",
        "postgres:\n  dsn: \"" + db->dsn() +
            "\"\n"
            "http: {listen: 127.0.0.1:0}\n"
            "auth:\n  jwt:\n    algorithm: " +
            std::string(auth::jwt_algorithm_name(GetParam())) + "\n    public_key_file: \"" +
            public_file +
            "\"\n    audience: chat\n"
            "  login:\n    sql: \"SELECT user_id, username FROM chat.login($1, $2)\"\n"
            "    private_key_file: \"" +
            private_file +
            "\"\n"
            "topics:\n  - pattern: \"user:{sub}\"\n    allow: [subscribe]\n"
            "commands:\n  whoami:\n    sql: \"SELECT $1::text AS sub\"\n    params: [$user]\n"
            "rules:\n  - name: noop\n    channel: noop\n    actions:\n      - log: \"noop\"\n");
    daemon = std::make_unique<DaemonProcess>(std::vector<std::string>{"run", "--config", config});
    ASSERT_TRUE(daemon->wait_for_output("ready")) << daemon->output();
    port = daemon->http_port();
  }

  std::string valid(const std::string& sub) {
    return signed_token(GetParam(), keys.private_pem, sub);
  }
  std::string whoami(WsClient& c) {
    return c.request(R"({"type":"call","command":"whoami"})").value_or("(no reply)");
  }

  static test::ScratchDatabase* db;
  static std::string ann;
  KeyPair keys;
  std::unique_ptr<DaemonProcess> daemon;
  int port = 0;
};

test::ScratchDatabase* HubKeys::db = nullptr;
std::string HubKeys::ann;

TEST_P(HubKeys, ValidTokensGetInOthersAreRefused) {
  // A valid token: in Authorization on /ws and /events, and as the first message.
  WsClient ws(port, "/ws", bearer(valid(ann)));
  ASSERT_TRUE(ws.open()) << ws.http_status() << daemon->output();
  EXPECT_NE(whoami(ws).find(R"("result":[{"sub":")" + ann + "\"}]"), std::string::npos);
  EXPECT_EQ(events_status(port, "user:" + ann, valid(ann)), 200);
  WsClient late(port);
  EXPECT_NE(late.request(R"({"type":"auth","token":")" + valid(ann) + "\"}")->find("\"ack\""),
            std::string::npos);
  EXPECT_NE(whoami(late).find(ann), std::string::npos);

  struct Bad {
    const char* what;
    std::string token;
    const char* reason;  // pgfanout_hub_auth_total's result
  };
  std::vector<Bad> bad = {
      {"another key", signed_token(GetParam(), make_keys(GetParam()).private_pem, ann),
       "signature"},
      {"HS256 with the public key as secret",
       signed_token(auth::JwtAlgorithm::HS256, keys.public_pem, ann), "algorithm"},
      {"alg none", unsigned_token(ann), "algorithm"},
      {"expired", signed_token(GetParam(), keys.private_pem, ann, -120), "expired"},
      {"wrong audience", signed_token(GetParam(), keys.private_pem, ann, 3600, "billing"),
       "audience"},
  };
  for (const auto& b : bad) {
    SCOPED_TRACE(b.what);
    ASSERT_FALSE(b.token.empty());
    std::string series = std::string(R"(pgfanout_hub_auth_total{result=")") + b.reason + "\"}";
    double before = sample(test::http_get(port, "/metrics").body, series);
    EXPECT_EQ(refused_upgrade(port, bearer(b.token)), 401);
    EXPECT_EQ(events_status(port, "user:" + ann, b.token), 401);
    WsClient c(port);
    auto r = c.request(R"({"type":"auth","token":")" + b.token + "\"}");
    ASSERT_TRUE(r);
    EXPECT_NE(r->find(R"("code":"unauthorized")"), std::string::npos) << *r;
    EXPECT_NE(whoami(c).find("unauthorized"), std::string::npos);  // still anonymous
    EXPECT_EQ(sample(test::http_get(port, "/metrics").body, series), before + 3);
  }
}

TEST_P(HubKeys, LoginMintsTokensWithTheConfiguredAlgorithm) {
  WsClient c(port);
  auto ok = log_in_as_ann(c);
  ASSERT_TRUE(ok);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*ok, m, std::regex(R"re("token":"([^"]+)")re"))) << *ok;
  std::string minted = m[1];
  // Signed with the configured algorithm and the login key: the daemon's own verifier (the public
  // key only) accepts it on a new connection.
  auto header = auth::base64url_decode(minted.substr(0, minted.find('.')));
  ASSERT_TRUE(header);
  EXPECT_NE(header->find(std::string(R"("alg":")") +
                         std::string(auth::jwt_algorithm_name(GetParam())) + "\""),
            std::string::npos)
      << *header;
  EXPECT_NE(whoami(c).find(R"("sub":")" + ann + "\""), std::string::npos);
  EXPECT_NE(c.request(R"({"type":"subscribe","topic":"user:)" + ann + "\"}")->find("\"ack\""),
            std::string::npos);
  WsClient again(port, "/ws", bearer(minted));
  ASSERT_TRUE(again.open()) << again.http_status();
  EXPECT_NE(whoami(again).find(R"("sub":")" + ann + "\""), std::string::npos);
  EXPECT_EQ(events_status(port, "user:" + ann, minted), 200);
  EXPECT_EQ(
      sample(test::http_get(port, "/metrics").body, R"(pgfanout_hub_logins_total{result="ok"})"),
      1);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, HubKeys,
                         ::testing::Values(auth::JwtAlgorithm::RS256, auth::JwtAlgorithm::ES256,
                                           auth::JwtAlgorithm::EdDSA),
                         [](const auto& test_param) {
                           return std::string(auth::jwt_algorithm_name(test_param.param));
                         });

// hub.idle_timeout: Beast pings a quiet client halfway through it and closes a connection that
// has sent nothing back by the end of it.
TEST(HubIdle, SilentClientsAreDroppedAnsweringOnesStay) {
  test::ScratchDatabase db("hubidle");
  auto config = test::write_temp_file(
      "hub.yaml", "postgres: {dsn: \"" + db.dsn() +
                      "\"}\nhttp: {listen: 127.0.0.1:0}\nhub: {idle_timeout: 2s}\n"
                      "topics:\n  - pattern: \"lobby\"\n    allow: [subscribe]\n"
                      "    anonymous: true\n"
                      "rules:\n  - name: noop\n    channel: noop\n    actions:\n"
                      "      - log: \"noop\"\n");
  DaemonProcess daemon({"run", "--config", config});
  ASSERT_TRUE(daemon.wait_for_output("ready")) << daemon.output();
  int port = daemon.http_port();
  const std::string series = R"(pgfanout_subscribers_dropped_total{reason="timeout"})";
  EXPECT_EQ(sample(test::http_get(port, "/metrics").body, series), 0);

  // A Beast client answers pings while it reads; one that subscribed and then only listens.
  WsClient answering(port);
  ASSERT_NE(answering.request(R"({"type":"subscribe","topic":"lobby"})")->find("\"ack\""),
            std::string::npos);
  // A raw client: the handshake, then it reads what comes but never answers anything.
  test::HttpStream silent(port,
                          "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
  ASSERT_TRUE(silent.wait_for("\r\n\r\n"));
  ASSERT_EQ(silent.status(), 101) << silent.text();
  auto opened = std::chrono::steady_clock::now();
  // Meanwhile the answering client waits for messages (none come), answering the pings.
  std::thread listening([&] { EXPECT_FALSE(answering.receive(5s)); });
  bool dropped = silent.wait_closed(8s);
  auto lasted = std::chrono::steady_clock::now() - opened;
  listening.join();
  ASSERT_TRUE(dropped) << silent.text();
  EXPECT_GE(lasted, 1500ms);  // not refused outright: dropped once idle
  // It was pinged (an unmasked ping frame, opcode 0x9) before being dropped.
  std::string frames = silent.text().substr(silent.text().find("\r\n\r\n") + 4);
  EXPECT_NE(frames.find('\x89'), std::string::npos);
  EXPECT_TRUE(
      test::wait_until([&] { return sample(test::http_get(port, "/metrics").body, series) == 1; }));

  // The answering client was idle as long, and longer: it is still there and served.
  EXPECT_FALSE(answering.closed());
  auto pong = answering.request(R"({"type":"ping"})");
  ASSERT_TRUE(pong);
  EXPECT_NE(pong->find("pong"), std::string::npos);
  EXPECT_EQ(sample(test::http_get(port, "/metrics").body, series), 1);
}

}  // namespace
}  // namespace pgfanout
