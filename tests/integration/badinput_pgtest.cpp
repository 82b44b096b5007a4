// Hostile notifications against the running daemon, sent with real NOTIFYs: malformed JSON,
// invalid UTF-8 (possible in a SQL_ASCII database), an empty payload, the largest payload NOTIFY
// allows (7999 bytes), a payload whose template renders an empty value, deep nesting. The daemon
// keeps running, counts each in /metrics, and still acts on the good notification sent last.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "support/TestSupport.hpp"

namespace pgfanout {
namespace {

using namespace std::chrono_literals;
using test::BlockingPg;

double metric(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

TEST(BadInput, DaemonCountsHostilePayloadsAndKeepsServing) {
  BlockingPg admin(test::test_dsn());
  std::string db = "pgfanout_badinput_" + std::to_string(::getpid());
  admin.exec("CREATE DATABASE " + db +
             " ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
  std::string dsn = test::test_dsn() + " dbname=" + db;
  auto config = test::write_temp_file(
      "pgfanout.yaml", "postgres: {dsn: \"" + dsn +
                           "\"}\nhttp: {listen: 127.0.0.1:0}\nrules:\n"
                           "  - name: users\n    channel: users_changed\n    actions:\n"
                           "      - log: \"user {id} name [{name}]\"\n");
  {
    test::DaemonProcess d({"run", "--config", config});
    ASSERT_TRUE(d.wait_for_output("ready")) << d.output();
    int port = d.http_port();
    ASSERT_GT(port, 0);
    BlockingPg s(dsn);
    s.exec("SELECT pg_notify('users_changed', '{\"id\": 1, ')");                 // malformed
    s.exec("SELECT pg_notify('users_changed', E'{\"id\": \"\\xff\\xfe\"}')");    // bad UTF-8
    s.exec("SELECT pg_notify('users_changed', '')");                             // empty
    s.exec("SELECT pg_notify('users_changed', repeat('x', 7999))");              // largest
    s.exec("SELECT pg_notify('users_changed', '{\"id\": 2, \"name\": null}')");  // null field
    s.exec("SELECT pg_notify('users_changed', repeat('[', 5000))");              // deep nesting
    EXPECT_NE(s.try_exec("SELECT pg_notify('users_changed', repeat('x', 8000))"), "")
        << "PostgreSQL refuses 8000 bytes itself";
    s.exec("SELECT pg_notify('users_changed', '{\"id\": 3, \"name\": \"ok\"}')");  // good
    ASSERT_TRUE(d.wait_for_output("[users] user 3 name [ok]")) << d.output();

    auto m = test::http_get(port, "/metrics");
    ASSERT_EQ(m.status, 200);
    EXPECT_EQ(metric(m.body, "pgfanout_notifications_total{channel=\"users_changed\"}"), 7);
    EXPECT_EQ(
        metric(
            m.body,
            "pgfanout_payload_errors_total{channel=\"users_changed\",reason=\"malformed_json\"}"),
        2);
    EXPECT_EQ(
        metric(m.body,
               "pgfanout_payload_errors_total{channel=\"users_changed\",reason=\"invalid_utf8\"}"),
        1);
    EXPECT_EQ(metric(m.body, "pgfanout_actions_skipped_total{rule=\"users\",kind=\"log\"}"), 6);
    EXPECT_EQ(metric(m.body, "pgfanout_actions_total{rule=\"users\",kind=\"log\"}"), 1);
    EXPECT_EQ(test::http_get(port, "/healthz").status, 200);
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait(), 0);
  }
  admin.exec("DROP DATABASE " + db + " WITH (FORCE)");
}

}  // namespace
}  // namespace pgfanout
