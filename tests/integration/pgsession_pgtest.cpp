// PgSession against the real PostgreSQL the harness started: it connects, reconnects after its
// backend is terminated (on_lost with was_up, then on_ready with first = false), keeps retrying
// while the server is unreachable (and stops retrying on stop()), drops the answers of
// query_current() that belong to a lost connection while query() still reports them, and can be
// destroyed with a reconnect pending or from its own callback.
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "pg/PgSession.hpp"
#include "support/TcpProxy.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::pg {
namespace {

using namespace std::chrono_literals;
using test::run_until;

PostgresConfig config(const std::string& dsn) {
  PostgresConfig c;
  c.dsn = dsn;
  c.connect_timeout = 2s;
  c.reconnect_min = 20ms;
  c.reconnect_max = 200ms;
  return c;
}

// The harness's server through a proxy the test can cut.
std::string through(const test::TcpProxy& proxy) {
  return "host=127.0.0.1 port=" + std::to_string(proxy.port()) + " user=postgres dbname=postgres";
}

struct Session : ::testing::Test {
  void make(const std::string& dsn) {
    PgSession::Handlers h;
    h.on_ready = [this](bool first) { ready.push_back(first); };
    h.on_lost = [this](const std::string& reason, const std::string&, bool was_up) {
      lost.push_back(reason + (was_up ? ":up" : ":attempt"));
      if (on_lost_extra) on_lost_extra();
    };
    session = std::make_unique<PgSession>(io, config(dsn), PgSession::Options{"test session"}, h);
  }

  // Starts a session whose server is unreachable (through a cut proxy) until proxy->restore().
  void start_unreachable() {
    proxy = std::make_unique<test::TcpProxy>(
        "127.0.0.1",
        static_cast<std::uint16_t>(std::stoi(test::harness_env("PGFANOUT_TEST_PGPORT"))));
    proxy->cut();
    make(through(*proxy));
    session->start();
  }

  std::string backend_pid() {
    std::optional<std::string> pid;
    session->query("SELECT pg_backend_pid()", {},
                   [&](PgResult&& r) { pid = r.ok ? r.at(0, 0).value_or("") : "error"; });
    run_until(
        io, [&] { return pid.has_value(); }, 5s);
    return pid.value_or("no answer");
  }

  boost::asio::io_context io;
  std::unique_ptr<test::TcpProxy> proxy;
  std::unique_ptr<PgSession> session;
  std::vector<bool> ready;
  std::vector<std::string> lost;
  std::function<void()> on_lost_extra;
};

TEST_F(Session, ReconnectsAfterItsBackendIsTerminated) {
  make(test::test_dsn());
  session->start();
  ASSERT_TRUE(run_until(
      io, [&] { return session->up(); }, 5s));
  EXPECT_EQ(ready, std::vector<bool>{true});
  auto gen = session->generation();
  auto pid = backend_pid();

  // An answer sent on the connection about to die: query() reports the failure,
  // query_current() drops it.
  bool current_answered = false;
  std::optional<bool> plain_ok;
  session->query_current("SELECT pg_sleep(5)", {}, [&](PgResult&&) { current_answered = true; });
  session->query("SELECT 1", {}, [&](PgResult&& r) { plain_ok = r.ok; });
  test::BlockingPg(test::test_dsn()).exec("SELECT pg_terminate_backend(" + pid + ")");

  ASSERT_TRUE(run_until(
      io, [&] { return ready.size() == 2; }, 10s))
      << "did not reconnect";
  EXPECT_EQ(ready, (std::vector<bool>{true, false}));
  ASSERT_FALSE(lost.empty());
  EXPECT_EQ(lost.front(), "error:up");
  EXPECT_GT(session->generation(), gen);
  EXPECT_NE(backend_pid(), pid);
  EXPECT_FALSE(current_answered);
  ASSERT_TRUE(plain_ok.has_value());
  EXPECT_FALSE(*plain_ok);
}

TEST_F(Session, RetriesWhileUnreachableAndStopsOnStop) {
  start_unreachable();
  ASSERT_TRUE(run_until(
      io, [&] { return lost.size() >= 3; }, 10s))
      << lost.size();
  for (const auto& l : lost) EXPECT_EQ(l.substr(l.find(':')), ":attempt") << l;
  EXPECT_TRUE(ready.empty());

  proxy->restore();
  ASSERT_TRUE(run_until(
      io, [&] { return session->up(); }, 10s));
  EXPECT_EQ(ready, std::vector<bool>{true});

  session->stop();
  EXPECT_FALSE(session->up());
  auto lost_before = lost.size();
  run_until(
      io, [] { return false; }, 300ms);
  EXPECT_EQ(lost.size(), lost_before) << "a stopped session reported a loss";
  EXPECT_EQ(ready.size(), 1u) << "a stopped session reconnected";
}

TEST_F(Session, FailMakesANewConnection) {
  make(test::test_dsn());
  session->start();
  ASSERT_TRUE(run_until(
      io, [&] { return session->up(); }, 5s));
  auto pid = backend_pid();
  session->fail("heartbeat", "the owner says the connection is deaf");
  EXPECT_FALSE(session->up());
  ASSERT_TRUE(run_until(
      io, [&] { return session->up(); }, 5s));
  EXPECT_EQ(lost, std::vector<std::string>{"heartbeat:up"});
  EXPECT_NE(backend_pid(), pid);
}

TEST_F(Session, DestroyedWithAReconnectPendingOrFromItsOwnCallback) {
  start_unreachable();
  ASSERT_TRUE(run_until(
      io, [&] { return !lost.empty(); }, 10s));
  session.reset();  // its reconnect timer is pending
  run_until(
      io, [] { return false; }, 300ms);

  // Destroyed by the owner inside on_lost.
  lost.clear();
  make(through(*proxy));
  on_lost_extra = [this] { session.reset(); };
  session->start();
  ASSERT_TRUE(run_until(
      io, [&] { return !session; }, 10s));
  run_until(
      io, [] { return false; }, 300ms);
  EXPECT_EQ(lost.size(), 1u);
}

}  // namespace
}  // namespace pgfanout::pg
