// What the daemon writes to its log: no secret ever appears (not the DSN's password, not
// postgres.password, not any key the schema marks secret), even while connecting fails and after
// a reload that changes them; and under systemd (JOURNAL_STREAM) every line starts with a syslog
// priority and carries no timestamp, and a multi-line message (libpq's) stays one line. Needs no
// servers: PostgreSQL is a closed port.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "app/Config.hpp"
#include "config/ConfigSchema.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout {
namespace {

using namespace std::chrono_literals;
using test::DaemonProcess;

// A loopback port nothing listens on.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// How this test sets each secret key of the schema, and the marker its value carries. A secret
// key added to the schema fails SecretKeysAreAllCovered until it is added here.
const std::map<std::string, std::string>& secret_settings() {
  static const std::map<std::string, std::string> settings = {
      {"postgres.dsn", "hunter2-dsn"},
      {"postgres.password", "hunter2-password"},
      {"redis.url", "hunter2-redis-url"},
      {"redis.password", "hunter2-redis-password"},
      {"redis.*.url", "hunter2-cache-url"},
      {"redis.*.password", "hunter2-cache-password"},
      {"rules[].actions[].webhook.secret", "hunter2webhook"},
      {"auth.jwt.secret", "hunter2-jwt-secret-at-least-32-bytes"},
  };
  return settings;
}

std::string config_with_secrets(int port, const std::string& suffix) {
  return "postgres:\n"
         "  dsn: \"host=127.0.0.1 port=" +
         std::to_string(port) + " user=app password=hunter2-dsn" + suffix +
         " dbname=app\"\n"
         "  password: \"hunter2-password" +
         suffix +
         "\"\n"
         "  connect_timeout: 1s\n  reconnect_min: 20ms\n  reconnect_max: 100ms\n"
         "redis:\n  url: \"redis://app:hunter2-redis-url" +
         suffix + "@127.0.0.1:" + std::to_string(port) +
         "/0\"\n"
         "  password: \"hunter2-redis-password" +
         suffix +
         "\"\n"
         "  reconnect_min: 20ms\n  reconnect_max: 100ms\n"
         "  cache:\n    url: \"redis://:hunter2-cache-url" +
         suffix + "@127.0.0.1:" + std::to_string(port) +
         "/1\"\n"
         "    password: \"hunter2-cache-password" +
         suffix +
         "\"\n"
         "http:\n  listen: 127.0.0.1:0\n"
         "auth:\n  jwt:\n    secret: \"hunter2-jwt-secret-at-least-32-bytes" +
         suffix +
         "\"\n"
         "rules:\n  - name: a\n    channel: c\n    actions:\n      - log: \"{payload}\"\n"
         "      - webhook: {url: \"http://127.0.0.1:1/\", secret: whsec_hunter2webhook00}\n";
}

TEST(DaemonLogs, SecretKeysAreAllCovered) {
  for (const auto& key : app::config_schema().keys()) {
    if (!key.secret) continue;
    EXPECT_TRUE(secret_settings().contains(std::string(key.path)))
        << key.path << " is secret: teach this test to set it and look for it in the log";
  }
}

TEST(DaemonLogs, SecretsNeverAppearEvenWhenConnectingFailsAndOnReload) {
  int port = closed_port();
  auto path = test::write_temp_file("pgfanout.yaml", config_with_secrets(port, ""));
  DaemonProcess d({"run", "--config", path, "--log-level", "trace"});
  ASSERT_TRUE(d.wait_for_output("Connection refused", 10s)) << d.output();
  EXPECT_TRUE(test::wait_until([&] {  // several failed attempts, each logged
    auto out = d.output();
    std::size_t n = 0;
    for (auto at = out.find("Connection refused"); at != std::string::npos;
         at = out.find("Connection refused", at + 1)) {
      ++n;
    }
    return n >= 3;
  })) << d.output();
  // A reload that changes the secrets: the restart-only warning names the keys, not values; the
  // JWT secret takes effect at once (access rules reload) and is not logged either.
  { std::ofstream(path) << config_with_secrets(port, "-new"); }
  d.signal(SIGHUP);
  EXPECT_TRUE(d.wait_for_output("reload: postgres.password changed")) << d.output();
  EXPECT_TRUE(d.wait_for_output("reload: postgres.dsn changed")) << d.output();
  EXPECT_TRUE(d.wait_for_output("reload: access rules checked")) << d.output();
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0) << d.output();
  auto out = d.output();
  EXPECT_NE(out.find("host=127.0.0.1 port=" + std::to_string(port)), std::string::npos) << out;
  for (const auto& [key, marker] : secret_settings()) {
    EXPECT_EQ(out.find(marker), std::string::npos) << key << " leaked into the log:\n" << out;
  }
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
}

TEST(DaemonLogs, ConfigErrorsDoNotEchoSecrets) {
  auto path = test::write_temp_file("bad.yaml",
                                    "postgres:\n  dsn: \"host=x password=hunter2-dsn bogus=1\"\n"
                                    "  password: hunter2-password\n  passwrd: 1\nrules: []\n");
  auto [code, out] = test::run_pgfanout({"run", "--config", path});
  EXPECT_EQ(code, 78) << out;
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
}

TEST(DaemonLogs, JournalFormatHasPriorityAndNoTimestamp) {
  int port = closed_port();
  auto path = test::write_temp_file("pgfanout.yaml", config_with_secrets(port, ""));
  DaemonProcess d({"run", "--config", path}, {{"JOURNAL_STREAM", "8:12345"}});
  ASSERT_TRUE(d.wait_for_output("Connection refused", 10s)) << d.output();
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(), 0);
  std::istringstream in(d.output());
  std::string line;
  std::regex priority(R"(^<[0-7]>\S.*)");
  std::regex timestamp(R"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d)");
  int lines = 0;
  bool saw_info = false, saw_warning = false;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_TRUE(std::regex_match(line, priority)) << line;
    EXPECT_FALSE(std::regex_search(line, timestamp)) << line;
    saw_info = saw_info || line.starts_with("<6>");
    saw_warning = saw_warning || line.starts_with("<4>");
  }
  EXPECT_GT(lines, 2);
  EXPECT_TRUE(saw_info);
  EXPECT_TRUE(saw_warning);
}

}  // namespace
}  // namespace pgfanout
