// The pgfanout binary end to end against the harness's PostgreSQL: CLI exit codes and messages,
// NOTIFY -> log action, on_reconnect after the listener's backend is killed, SIGHUP reload (a
// broken file keeps the old rules), SIGTERM, refusing a hot standby, and what /metrics shows from
// the start (every rule's channel, the event loop lag).
#include <signal.h>

#include <unistd.h>
#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "support/TestSupport.hpp"

namespace pgfanout {
namespace {

using namespace std::chrono_literals;
using test::BlockingPg;
using test::DaemonProcess;

std::string config_text(const std::string& dsn, const std::string& rules) {
  // Port 0: tests run beside other daemons, so none of them may take the default 8080.
  return "postgres:\n  dsn: \"" + dsn +
         "\"\n  heartbeat_interval: 500ms\n  heartbeat_timeout: 3s\n" +
         "  reconnect_min: 50ms\n  reconnect_max: 1s\nhttp:\n  listen: 127.0.0.1:0\nrules:\n" +
         rules;
}

const char* kRules = R"(  - name: profile
    channel: users_changed
    when: {op: [UPDATE]}
    actions:
      - log: "evict user:{id} name:{old.username}"
    on_reconnect:
      - log: "resync {channel}"
)";

TEST(Cli, VersionHelpAndUsageErrors) {
  auto [code, out] = test::run_pgfanout({"--version"});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "pgfanout " PGFANOUT_VERSION "\n");
  std::tie(code, out) = test::run_pgfanout({"--help"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("pgfanout install"), std::string::npos);
  std::tie(code, out) = test::run_pgfanout({"frobnicate"});
  EXPECT_EQ(code, 64);
  EXPECT_NE(out.find("unknown command \"frobnicate\""), std::string::npos);
  std::tie(code, out) = test::run_pgfanout({"run", "--config"});
  EXPECT_EQ(code, 64);
}

TEST(Cli, CheckPrintsEveryErrorAndExits78) {
  auto path = test::write_temp_file("bad.yaml",
                                    "postgres:\n  dsn: \"host=x\"\n  bogus: 1\nrules:\n"
                                    "  - name: a\n    chanel: c\n    actions: [{log: \"{\"}]\n");
  auto [code, out] = test::run_pgfanout({"check", "--config", path});
  EXPECT_EQ(code, 78);
  EXPECT_NE(out.find(path + ":3:3: postgres: unknown key \"bogus\""), std::string::npos) << out;
  EXPECT_NE(out.find(path + ":6:5: rules[0]: unknown key \"chanel\" (did you mean \"channel\"?)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(path + ":5:5: rules[0].channel: \"channel\" is required"), std::string::npos)
      << out;
  EXPECT_NE(out.find(path + ":7:21: rules[0].actions[0].log: bad template"), std::string::npos)
      << out;
  EXPECT_NE(out.find("4 error(s)"), std::string::npos) << out;

  // run refuses the same file with the same messages.
  std::tie(code, out) = test::run_pgfanout({"run", "--config", path});
  EXPECT_EQ(code, 78);
  EXPECT_NE(out.find(path + ":3:3: postgres: unknown key \"bogus\""), std::string::npos) << out;
}

TEST(Cli, CheckAcceptsAValidFile) {
  auto path = test::write_temp_file("ok.yaml", config_text("host=x", kRules));
  auto [code, out] = test::run_pgfanout({"check", "--config", path});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("OK (1 rule(s), 1 channel(s))"), std::string::npos) << out;
}

TEST(Cli, ReferenceIsTheConfigurationDoc) {
  auto [code, out] = test::run_pgfanout({"check", "--reference"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("| `postgres.heartbeat_interval` | duration |"), std::string::npos);
}

struct DaemonFixture : ::testing::Test {
  void SetUp() override {
    db = std::make_unique<test::ScratchDatabase>("daemon");
    config_path = test::write_temp_file("pgfanout.yaml", config_text(db->dsn(), kRules));
  }
  std::unique_ptr<DaemonProcess> start() {
    auto p = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"run", "--config", config_path, "--log-level", "debug"});
    EXPECT_TRUE(p->wait_for_output("ready")) << p->output();
    return p;
  }
  std::unique_ptr<test::ScratchDatabase> db;
  std::string config_path;
};

TEST_F(DaemonFixture, EveryRuleChannelIsCountedBeforeItsFirstNotification) {
  auto d = start();
  int port = d->http_port();
  ASSERT_GT(port, 0);
  auto m = test::http_get(port, "/metrics");
  ASSERT_EQ(m.status, 200);
  // Registered when the rules loaded, not by the first notification on the channel.
  EXPECT_NE(m.body.find("\npgfanout_notifications_total{channel=\"users_changed\"} 0\n"),
            std::string::npos)
      << m.body;
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(), 0) << d->output();
}

TEST_F(DaemonFixture, MetricsShowTheEventLoopLagFromTheStart) {
  auto d = start();
  int port = d->http_port();
  ASSERT_GT(port, 0);
  // The lag timer runs from the start: after 100 ms it has measured.
  std::this_thread::sleep_for(100ms);
  auto m = test::http_get(port, "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("# TYPE pgfanout_event_loop_lag_seconds histogram\n"), std::string::npos);
  EXPECT_NE(m.body.find("\npgfanout_event_loop_lag_seconds_count "), std::string::npos);
  EXPECT_EQ(m.body.find("\npgfanout_event_loop_lag_seconds_count 0\n"), std::string::npos);
  EXPECT_NE(m.body.find("\npgfanout_event_loop_lag_max_seconds "), std::string::npos);
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(), 0) << d->output();
}

TEST_F(DaemonFixture, NotifyRunsTheLogAction) {
  auto d = start();
  BlockingPg s(db->dsn());
  s.notify(
      "users_changed",
      R"({"v":1,"op":"UPDATE","table":"users","new":{"id":7,"username":"ann"},"old":{"id":7,"username":"anne"}})");
  s.notify("users_changed", R"({"op":"INSERT","new":{"id":8}})");  // filtered out by when.op
  s.notify("users_changed", R"({"op":"UPDATE","new":{}})");        // skipped: no {id}
  EXPECT_TRUE(d->wait_for_output("[profile] evict user:7 name:anne")) << d->output();
  EXPECT_TRUE(d->wait_for_output("action skipped")) << d->output();
  EXPECT_FALSE(d->output_contains("user:8"));
  EXPECT_FALSE(d->output_contains("[profile] evict user:{"));  // never a literal placeholder
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(), 0) << d->output();
  EXPECT_TRUE(d->output_contains("received SIGTERM"));
}

TEST_F(DaemonFixture, OnReconnectRunsAfterTheBackendIsKilled) {
  auto d = start();
  EXPECT_TRUE(d->wait_for_output("resync users_changed"));  // first connection: nothing heard yet
  BlockingPg s(db->dsn());
  s.exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
      "'pgfanout' AND datname = current_database()");
  EXPECT_TRUE(d->wait_for_output("listener reconnected", 15s)) << d->output();
  auto out = d->output();
  auto first = out.find("resync users_changed");
  EXPECT_NE(out.find("resync users_changed", first + 1), std::string::npos) << out;
  s.notify("users_changed", R"({"op":"UPDATE","new":{"id":9},"old":{"id":9,"username":"z"}})");
  EXPECT_TRUE(d->wait_for_output("evict user:9 name:z")) << d->output();
}

TEST_F(DaemonFixture, ReloadKeepsOldRulesOnABrokenFileAndSwapsChannelsOnAGoodOne) {
  auto d = start();
  // A broken file: every error logged, old rules keep running.
  test::write_temp_file("unused", "");
  {
    std::ofstream(config_path) << "postgres: {dsn: \"" << db->dsn() << "\"}\nrules:\n  - name: x\n";
  }
  d->signal(SIGHUP);
  EXPECT_TRUE(d->wait_for_output("reload failed")) << d->output();
  EXPECT_TRUE(d->output_contains("rules[0].channel: \"channel\" is required"));
  BlockingPg s(db->dsn());
  s.notify("users_changed", R"({"op":"UPDATE","new":{"id":1},"old":{"id":1,"username":"a"}})");
  EXPECT_TRUE(d->wait_for_output("evict user:1 name:a")) << d->output();

  // A good file on another channel: the new channel is heard, the old one no longer.
  {
    std::ofstream(config_path) << config_text(
        db->dsn(),
        "  - name: orders\n    channel: orders_changed\n    actions: [{log: \"order {id}\"}]\n");
  }
  d->signal(SIGHUP);
  EXPECT_TRUE(d->wait_for_output("reloaded: 1 rule(s) on 1 channel(s)")) << d->output();
  EXPECT_TRUE(d->wait_for_output("now listening on 1 channel(s)")) << d->output();
  s.notify("users_changed", R"({"op":"UPDATE","new":{"id":2},"old":{"id":2,"username":"b"}})");
  s.notify("orders_changed", R"({"id":42})");
  EXPECT_TRUE(d->wait_for_output("[orders] order 42")) << d->output();
  EXPECT_FALSE(d->output_contains("evict user:2"));
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(), 0);
}

TEST_F(DaemonFixture, InstallIsIdempotentAndItsTriggersReachTheDaemon) {
  BlockingPg s(db->dsn());
  s.exec("CREATE TABLE public.\"Users\" (id int PRIMARY KEY, username text, secret text)");
  {
    std::ofstream(config_path)
        << config_text(db->dsn(),
                       "  - name: users\n    channel: users_changed\n    actions:\n"
                       "      - log: \"{op} user {id} {old.username}->{new.username}\"\n"
                       "      - log: \"secret={new.secret}\"\n")
        << "watch:\n  - table: public.\"Users\"\n    channel: users_changed\n"
           "    columns: [username]\n    ops: [UPDATE]\n";
  }
  for (int i = 0; i < 2; ++i) {
    auto [code, out] = test::run_pgfanout({"install", "--config", config_path});
    ASSERT_EQ(code, 0) << out;
    EXPECT_NE(out.find("installed the trigger generators and 1 watch(es)"), std::string::npos);
    // It says which triggers the watches got: native where the harness's server has them.
    bool native = std::getenv("PGFANOUT_TEST_NATIVE") != nullptr &&
                  std::string(std::getenv("PGFANOUT_TEST_NATIVE")) == "1";
    EXPECT_NE(out.find(native ? "watch triggers: native" : "watch triggers: PL/pgSQL"),
              std::string::npos)
        << out;
  }
  EXPECT_EQ(s.value("SELECT channel FROM pgfanout.watches"), "users_changed");
  EXPECT_EQ(s.value("SELECT native::text FROM pgfanout.watches"),
            std::getenv("PGFANOUT_TEST_NATIVE") != nullptr &&
                    std::string(std::getenv("PGFANOUT_TEST_NATIVE")) == "1"
                ? "true"
                : "false");
  auto d = start();
  s.exec("INSERT INTO public.\"Users\" VALUES (1, 'anne', 'x')");
  s.exec("UPDATE public.\"Users\" SET username = 'ann' WHERE id = 1");
  EXPECT_TRUE(d->wait_for_output("UPDATE user 1 anne->ann")) << d->output();
  // `columns` keeps other columns out of the payload: the template field is missing, so skipped.
  EXPECT_TRUE(d->output_contains("{new.secret} is missing")) << d->output();
  EXPECT_FALSE(d->output_contains("INSERT user"));
}

TEST(Cli, SqlPrintsTheTriggerGenerators) {
  auto [code, out] = test::run_pgfanout({"sql"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("CREATE SCHEMA IF NOT EXISTS pgfanout"), std::string::npos);
  EXPECT_NE(out.find("FUNCTION pgfanout.watch("), std::string::npos);
}

// Regression: the daemon died of SIGPIPE (exit 141) when it wrote to a Redis connection the server
// had closed (fault_redis_redistest, Redis stopped under load). SIGPIPE is ignored: writes fail
// with EPIPE and the connection is handled as lost.
TEST_F(DaemonFixture, SigpipeDoesNotEndTheDaemon) {
  auto d = start();
  int port = d->http_port();
  ASSERT_GT(port, 0);
  d->signal(SIGPIPE);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(test::http_get(port, "/healthz").status, 200) << d->output();
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(), 0) << d->output();
}

TEST_F(DaemonFixture, SecondSignalExitsAtOnce) {
  auto d = start();
  d->signal(SIGTERM);
  d->signal(SIGTERM);
  int code = d->wait();
  EXPECT_TRUE(code == 0 || code == 1) << code;
}

// A hot standby cannot LISTEN: the daemon refuses it with a clear message.
TEST(Standby, RunRefusesAHotStandby) {
  std::string pgbin = test::harness_env("PGFANOUT_TEST_PGBIN");
  std::string port = test::harness_env("PGFANOUT_TEST_PGPORT");
  std::string pgctl = test::harness_env("PGFANOUT_TEST_PGCTL");
  // The cluster's owner runs the standby too (initdb and postgres refuse root).
  std::string as_owner = pgctl.substr(0, pgctl.find(pgbin));
  std::string dir = std::filesystem::path(test::write_temp_file("x", "")).parent_path() / "standby";
  std::filesystem::create_directories(dir);
  ASSERT_EQ(std::system(("chmod 777 " + std::filesystem::path(dir).parent_path().string()).c_str()),
            0);
  if (!as_owner.empty()) {
    ASSERT_EQ(std::system(("chown postgres: " + dir).c_str()), 0);
  }
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace);
  int standby_port = 20000 + (::getpid() % 20000);
  ASSERT_EQ(std::system((as_owner + pgbin + "/pg_basebackup -D " + dir + " -R -h 127.0.0.1 -p " +
                         port + " -U postgres >/dev/null 2>&1")
                            .c_str()),
            0);
  std::string ctl = as_owner + pgbin + "/pg_ctl -D " + dir + " -l " + dir + "/log";
  ASSERT_EQ(std::system((ctl + " -w -o '-p " + std::to_string(standby_port) + " -k " + dir +
                         "' start >/dev/null 2>&1")
                            .c_str()),
            0);
  auto path = test::write_temp_file(
      "standby.yaml", config_text("host=127.0.0.1 port=" + std::to_string(standby_port) +
                                      " user=postgres dbname=postgres",
                                  kRules));
  auto [code, out] = test::run_pgfanout({"run", "--config", path});
  EXPECT_EQ(std::system((ctl + " -m immediate stop >/dev/null 2>&1").c_str()), 0);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("is a hot standby"), std::string::npos) << out;
  EXPECT_NE(out.find("point postgres.dsn at the primary"), std::string::npos) << out;
}

}  // namespace
}  // namespace pgfanout
