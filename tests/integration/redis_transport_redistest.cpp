// RedisConnection's transports against real Redis servers: a Unix socket, and TLS (rediss://) on
// the harness Redis's TLS port, whose certificates come from the harness's own CA. Refused TLS
// connections are checked by their metric, since they must never become ready.
#include <signal.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "app/Config.hpp"
#include "cache/RedisEvictor.hpp"
#include "metrics/Metrics.hpp"
#include "redis/RedisConnection.hpp"
#include "redis_test_client.hpp"
#include "rules/Router.hpp"
#include "rules/RuleSet.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::test {
namespace {

using namespace std::chrono_literals;
using redis::RedisConnection;
using redis::RedisUrl;

std::string tls_file(const char* name) {
  return harness_env("PGFANOUT_TEST_TLS_DIR") + "/" + name;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int tls_port() {
  return std::atoi(harness_env("PGFANOUT_TEST_REDIS_TLS_PORT").c_str());
}

std::string prefix() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string("tls:") + info->name() + ":" + std::to_string(::getpid()) + ":";
}

RedisUrl parse(const std::string& text) {
  std::string error;
  auto url = RedisUrl::parse(text, error);
  EXPECT_TRUE(url) << text << ": " << error;
  return url.value_or(RedisUrl{});
}

// rediss:// to `host`:`port` trusting the harness CA.
RedisUrl tls_url(const std::string& host, int port = tls_port()) {
  RedisUrl url = parse("rediss://" + host + ":" + std::to_string(port) + "/0");
  url.tls.ca_file = tls_file("ca.crt");
  return url;
}

class RedisTransport : public ::testing::Test {
 protected:
  void open(RedisUrl url, std::chrono::milliseconds connect_timeout = 2s) {
    RedisConnection::Options o{"t", std::move(url), connect_timeout, 5s, 20ms, 100ms};
    conn = std::make_unique<RedisConnection>(io, metrics, std::move(o),
                                             RedisConnection::Callbacks{[this] { ++readies; }, {}});
    conn->start();
  }

  double connect_errors(const char* reason) {
    return metrics.value("pgfanout_redis_connect_errors_total",
                         {{"target", "t"}, {"reason", reason}});
  }

  // Sends one command and runs the loop until its reply; returns it as text ("nil", "ERR...").
  std::string call(std::vector<std::string> args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    std::optional<std::string> got;
    conn->command(argv.size(), argv.data(), lens.data(), [&](redisReply* r) {
      if (r == nullptr) {
        got = "<lost>";
      } else if (r->type == REDIS_REPLY_INTEGER) {
        got = std::to_string(r->integer);
      } else if (r->type == REDIS_REPLY_NIL) {
        got = "nil";
      } else {
        got = std::string(r->str, r->len);
      }
    });
    EXPECT_TRUE(run_until(io, [&] { return got.has_value(); }));
    return got.value_or("<none>");
  }

  // The connection keeps failing: `reason` is counted at least twice (a retry included) and it
  // never became ready.
  void expect_refused(const char* reason) {
    EXPECT_TRUE(run_until(
        io, [&] { return connect_errors(reason) >= 2; }, 5s))
        << reason << " errors: " << connect_errors(reason);
    EXPECT_FALSE(conn->ready());
    EXPECT_EQ(readies, 0);
    EXPECT_EQ(metrics.value("pgfanout_redis_connected", {{"target", "t"}}), 0);
    EXPECT_GE(metrics.value("pgfanout_redis_disconnects_total", {{"target", "t"}}), 2);
    for (const char* other : {"resolve", "connect", "tls", "login", "timeout"}) {
      if (std::string(other) != reason) {
        EXPECT_EQ(connect_errors(other), 0) << other;
      }
    }
  }

  boost::asio::io_context io{1};
  Metrics metrics;
  std::unique_ptr<RedisConnection> conn;
  int readies = 0;
  std::string p = prefix();
  RedisTestClient plain{harness_redis_port()};  // the same server without TLS, for checks
};

TEST_F(RedisTransport, TlsConnectsVerifiesAndPipelines) {
  open(tls_url("localhost"));
  ASSERT_TRUE(run_until(io, [&] { return conn->ready(); })) << connect_errors("tls");
  EXPECT_EQ(metrics.value("pgfanout_redis_connected", {{"target", "t"}}), 1);
  // 300 commands in one go: they leave in few writes, the replies come back in order.
  std::vector<std::string> replies;
  for (int i = 0; i < 300; ++i) {
    std::string key = p + std::to_string(i);
    std::string value = "v" + std::to_string(i);
    const char* argv[] = {"SET", key.c_str(), value.c_str()};
    std::size_t lens[] = {3, key.size(), value.size()};
    conn->command(3, argv, lens, [&replies](redisReply* r) {
      replies.push_back(r == nullptr ? "<lost>" : std::string(r->str, r->len));
    });
  }
  EXPECT_GT(conn->in_flight(), 0u);
  ASSERT_TRUE(run_until(io, [&] { return replies.size() == 300; }));
  EXPECT_EQ(std::count(replies.begin(), replies.end(), "OK"), 300);
  EXPECT_EQ(conn->in_flight(), 0u);
  EXPECT_EQ(plain.cmd({"GET", p + "299"}), "v299");
  // A reply much larger than one read (and one TLS record).
  std::string big(300'000, 'x');
  big[12345] = 'y';
  EXPECT_EQ(call({"SET", p + "big", big}), "OK");
  EXPECT_EQ(call({"GET", p + "big"}), big);
  EXPECT_EQ(call({"CLIENT", "GETNAME"}), "pgfanout");
}

TEST_F(RedisTransport, TlsToAnIpAddressChecksTheCertificatesIpEntries) {
  open(tls_url("127.0.0.1"));
  ASSERT_TRUE(run_until(io, [&] { return conn->ready(); })) << connect_errors("tls");
  EXPECT_EQ(call({"PING"}), "PONG");
}

TEST_F(RedisTransport, TlsServerNameOverridesTheHost) {
  RedisUrl url = tls_url("127.0.0.1");
  url.tls.server_name = "localhost";
  open(url);
  ASSERT_TRUE(run_until(io, [&] { return conn->ready(); })) << connect_errors("tls");
}

TEST_F(RedisTransport, TlsWithAWrongCaIsRefusedAndCounted) {
  RedisUrl url = tls_url("localhost");
  url.tls.ca_file = tls_file("other-ca.crt");
  open(url);
  expect_refused("tls");
}

TEST_F(RedisTransport, TlsWithoutACaFileTrustsOnlyTheSystemStore) {
  RedisUrl url = tls_url("localhost");
  url.tls.ca_file.clear();
  open(url);
  expect_refused("tls");
}

TEST_F(RedisTransport, TlsHostnameMismatchIsRefused) {
  RedisUrl url = tls_url("localhost");
  url.tls.server_name = "redis.example.org";  // not in the certificate
  open(url);
  expect_refused("tls");
}

TEST_F(RedisTransport, TlsIpAddressNotInTheCertificateIsRefused) {
  RedisUrl url = tls_url("127.0.0.1");
  url.tls.server_name = "127.0.0.2";
  open(url);
  expect_refused("tls");
}

TEST_F(RedisTransport, TlsToAPlainPortNeverBecomesReady) {
  // A plain Redis reads the ClientHello as the start of an inline command and waits for its end:
  // the handshake never finishes, and connect_timeout ends each attempt.
  open(tls_url("127.0.0.1", harness_redis_port()), 200ms);
  expect_refused("timeout");
}

std::vector<std::string> tls_server_args(int port, const char* auth_clients) {
  return {"--tls-port",         std::to_string(port),
          "--tls-cert-file",    tls_file("server.crt"),
          "--tls-key-file",     tls_file("server.key"),
          "--tls-ca-cert-file", tls_file("ca.crt"),
          "--tls-auth-clients", auth_clients};
}

TEST_F(RedisTransport, TlsClientCertificateRequiredAndMissingIsRefused) {
  int port = OwnRedisServer::free_port();
  OwnRedisServer own(tls_server_args(port, "yes"));
  open(tls_url("localhost", port));
  expect_refused("tls");
}

TEST_F(RedisTransport, TlsClientCertificateRequiredAndGivenConnects) {
  int port = OwnRedisServer::free_port();
  OwnRedisServer own(tls_server_args(port, "yes"));
  RedisUrl url = tls_url("localhost", port);
  url.tls.cert_file = tls_file("client.crt");
  url.tls.key_file = tls_file("client.key");
  open(url);
  ASSERT_TRUE(run_until(io, [&] { return conn->ready(); })) << connect_errors("tls");
  EXPECT_EQ(call({"PING"}), "PONG");
}

TEST_F(RedisTransport, UnixSocket) {
  std::string dir = write_temp_file("unused", "");
  std::string socket = dir.substr(0, dir.rfind('/')) + "/redis.sock";
  OwnRedisServer own({"--unixsocket", socket, "--unixsocketperm", "700"});
  open(parse("unix://" + socket + "?db=3"));
  ASSERT_TRUE(run_until(io, [&] { return conn->ready(); })) << connect_errors("connect");
  EXPECT_EQ(call({"SET", p + "k", "v"}), "OK");
  RedisTestClient check(own.port());
  EXPECT_EQ(check.cmd({"SELECT", "3"}), "OK");
  EXPECT_EQ(check.cmd({"GET", p + "k"}), "v");
}

TEST_F(RedisTransport, LossGivesEveryWaitingHandlerNullptrOnce) {
  int port = OwnRedisServer::free_port();
  OwnRedisServer own(tls_server_args(port, "no"));
  open(tls_url("localhost", port));
  ASSERT_TRUE(run_until(io, [&] { return conn->ready(); })) << connect_errors("tls");
  // BLPOP holds its reply back; the commands behind it wait too. Then the server dies.
  std::vector<int> calls(3, 0);
  std::vector<bool> got_null(3, false);
  std::string key = p + "list";
  for (int i = 0; i < 3; ++i) {
    const char* argv[] = {"BLPOP", key.c_str(), "0"};
    std::size_t lens[] = {5, key.size(), 1};
    conn->command(3, argv, lens, [&, i](redisReply* r) {
      ++calls[i];
      got_null[i] = r == nullptr;
    });
  }
  run_until(
      io, [] { return false; }, 200ms);
  own.stop();
  ASSERT_TRUE(run_until(io, [&] { return calls[2] == 1; }));
  run_until(
      io, [] { return false; }, 200ms);
  EXPECT_EQ(calls, std::vector<int>({1, 1, 1}));
  EXPECT_EQ(got_null, std::vector<bool>({true, true, true}));
  EXPECT_FALSE(conn->ready());
}

// The evictor on a TLS target whose CA file is wrong: evictions wait in the bounded queue, the
// refusals are counted, and once the file holds the right CA (read again on each connect) the
// queued keys are evicted. No restart, nothing lost.
TEST(RedisTlsEvictor, WrongCaQueuesEvictionsUntilTheCaFileIsFixed) {
  std::string p = prefix();
  std::string ca = write_temp_file("redis-ca.pem", read_file(tls_file("other-ca.crt")));
  auto result = app::load_config_text(
      "postgres: {dsn: \"host=127.0.0.1\"}\n"
      "redis:\n"
      "  url: rediss://localhost:" +
          std::to_string(tls_port()) +
          "/0\n"
          "  tls_ca_file: " +
          ca +
          "\n"
          "  reconnect_min: 20ms\n"
          "  reconnect_max: 100ms\n"
          "rules:\n"
          "  - name: r\n"
          "    channel: c\n"
          "    actions:\n"
          "      - evict: \"" +
          p + "user:{id}\"\n",
      "test.yaml");
  for (const auto& e : result.errors) ADD_FAILURE() << e.to_string();
  ASSERT_TRUE(result.config);
  boost::asio::io_context io{1};
  Metrics metrics;
  rules::Router router(metrics);
  std::vector<std::string> gaps;
  redis::RedisEvictor evictor(io, metrics, result.config->redis,
                              [&](const std::string& rule) { gaps.push_back(rule); });
  router.add_executor("evict", evictor);
  router.set_rules(result.config->rules);
  evictor.start();
  RedisTestClient plain(harness_redis_port());
  plain.set(p + "user:7");

  router.route(rules::Notification{"c", R"({"id": 7})"});
  router.flush();
  auto tls_errors = [&] {
    return metrics.value("pgfanout_redis_connect_errors_total",
                         {{"target", "default"}, {"reason", "tls"}});
  };
  ASSERT_TRUE(run_until(
      io, [&] { return tls_errors() >= 2; }, 5s));
  EXPECT_TRUE(plain.exists(p + "user:7"));
  EXPECT_EQ(metrics.value("pgfanout_redis_queued", {{"target", "default"}}), 1);
  EXPECT_FALSE(evictor.idle());

  std::ofstream(ca, std::ios::trunc) << read_file(tls_file("ca.crt"));
  ASSERT_TRUE(run_until(
      io, [&] { return evictor.idle(); }, 10s));
  EXPECT_FALSE(plain.exists(p + "user:7"));
  EXPECT_EQ(metrics.value("pgfanout_redis_connected", {{"target", "default"}}), 1);
  EXPECT_TRUE(gaps.empty());
}

// The binary end to end: a NOTIFY evicts a key on the TLS port.
TEST(RedisTlsDaemon, NotifyEvictsOverTls) {
  std::string p = prefix();
  std::string channel = "redis_tls_" + std::to_string(::getpid());
  std::string config = write_temp_file(
      "pgfanout.yaml", "postgres: {dsn: \"" + test_dsn() +
                           "\"}\nhttp: {listen: 127.0.0.1:0}\nredis:\n"
                           "  url: rediss://localhost:" +
                           std::to_string(tls_port()) + "/0\n  tls_ca_file: " + tls_file("ca.crt") +
                           "\nrules:\n  - name: r\n    channel: " + channel +
                           "\n    actions:\n      - evict: \"" + p + "user:{id}\"\n");
  DaemonProcess daemon({"run", "--config", config});
  ASSERT_TRUE(daemon.wait_for_output("Redis target default (rediss://localhost:"))
      << daemon.output();
  ASSERT_TRUE(daemon.wait_for_output("connected")) << daemon.output();
  ASSERT_TRUE(daemon.wait_for_output("ready")) << daemon.output();
  RedisTestClient plain(harness_redis_port());
  plain.set(p + "user:7");
  plain.set(p + "user:8");
  BlockingPg pg(test_dsn());
  pg.notify(channel, R"({"id": 7})");
  ASSERT_TRUE(wait_until([&] { return !plain.exists(p + "user:7"); })) << daemon.output();
  EXPECT_TRUE(plain.exists(p + "user:8"));
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.output();
}

}  // namespace
}  // namespace pgfanout::test
