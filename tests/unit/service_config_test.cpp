// The service-related config: `http:` and `shutdown:` keys with their errors at line and column,
// the generic "which restart-only keys changed" comparison a reload uses, and ShutdownDrain.
#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "app/Config.hpp"
#include "app/ShutdownDrain.hpp"
#include "config/ConfigSchema.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout {
namespace {

using namespace std::chrono_literals;

app::LoadResult load(const std::string& text) {
  return app::load_config_text(text, "test.yaml", [](std::string_view name) {
    return name == "PW" ? std::optional<std::string>("from-env") : std::nullopt;
  });
}

std::string with(const std::string& extra) {
  return "postgres:\n  dsn: host=db\n" + extra +
         "rules:\n  - name: a\n    channel: c\n    actions: [{log: x}]\n";
}

std::string errors(const app::LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.to_string() + "\n";
  return out;
}

TEST(HttpConfig, DefaultsAndValues) {
  auto r = load(with(""));
  ASSERT_TRUE(r.config) << errors(r);
  EXPECT_EQ(r.config->http.address.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(r.config->http.max_connections, 1024);
  EXPECT_EQ(r.config->http.max_header_bytes, 8192u);
  EXPECT_EQ(r.config->http.max_body_bytes, 65536u);
  EXPECT_EQ(r.config->http.read_timeout, 10s);
  EXPECT_EQ(r.config->http.idle_timeout, 60s);
  EXPECT_EQ(r.config->shutdown.drain_timeout, 10s);

  r =
      load(with("http:\n  listen: \"[::1]:9090\"\n  max_connections: 10\n  max_body_size: 1MiB\n"
                "shutdown: {drain_timeout: 2s}\n"));
  ASSERT_TRUE(r.config) << errors(r);
  EXPECT_EQ(r.config->http.address.host, "::1");
  EXPECT_EQ(r.config->http.address.port, 9090);
  EXPECT_EQ(r.config->http.max_connections, 10);
  EXPECT_EQ(r.config->http.max_body_bytes, 1024u * 1024u);
  EXPECT_EQ(r.config->shutdown.drain_timeout, 2s);
}

TEST(HttpConfig, ErrorsNameLineAndColumn) {
  struct Case {
    std::string yaml;
    std::string error;
  };
  const Case cases[] = {
      {"http:\n  listen: 127.0.0.1\n",
       "test.yaml:4:11: http.listen: invalid listen address \"127.0.0.1\": expected HOST:PORT"},
      {"http:\n  listen: \"::1:80\"\n",
       "test.yaml:4:11: http.listen: invalid listen address "
       "\"::1:80\": an IPv6 address needs brackets"},
      {"http:\n  listen: db.example:80\n",
       "test.yaml:4:11: http.listen: invalid listen address "
       "\"db.example:80\": host \"db.example\" is not an IP"},
      {"http:\n  listen: 127.0.0.1:99999\n",
       "test.yaml:4:11: http.listen: invalid listen "
       "address \"127.0.0.1:99999\": port 99999 is out"},
      {"http:\n  lsten: 127.0.0.1:80\n",
       "test.yaml:4:3: http: unknown key \"lsten\" (did you mean \"listen\"?)"},
      {"http:\n  max_connections: 0\n",
       "test.yaml:4:20: http.max_connections: must be between 1 and 1000000"},
      {"http:\n  idle_timeout: 5\n", "test.yaml:4:17: http.idle_timeout: expected a duration"},
      {"http:\n  max_header_size: 10\n",
       "test.yaml:4:20: http.max_header_size: must be at least 1KiB"},
      {"shutdown:\n  drain_timeout: soon\n",
       "test.yaml:4:18: shutdown.drain_timeout: expected a duration"},
  };
  for (const auto& c : cases) {
    auto r = load(with(c.yaml));
    EXPECT_FALSE(r.config) << c.yaml;
    EXPECT_NE(errors(r).find(c.error), std::string::npos) << c.yaml << "\ngot: " << errors(r);
  }
}

TEST(RestartOnlyKeys, EveryChangedRestartOnlyKeyIsNamed) {
  auto a = load(with("http: {listen: 127.0.0.1:8080}\n"));
  ASSERT_TRUE(a.config) << errors(a);
  // Same values spelled differently, or a section added with its defaults: no change.
  auto same = load(
      "postgres: {dsn: host=db}\nhttp: {max_connections: 1024}\n"
      "rules:\n  - name: b\n    channel: d\n    actions: [{log: y}]\n");
  ASSERT_TRUE(same.config) << errors(same);
  EXPECT_EQ(app::changed_restart_only_keys(*a.config, *same.config), std::vector<std::string>{});

  auto b = load(
      "postgres:\n  dsn: host=db2\n  password: ${PW}\n"
      "http: {listen: \"127.0.0.1:9090\", idle_timeout: 1s}\nconsumer: other\n"
      "log: {level: debug}\nshutdown: {drain_timeout: 1s}\n"
      "rules:\n  - name: a\n    channel: c\n    actions: [{log: x}]\n");
  ASSERT_TRUE(b.config) << errors(b);
  // log.level, shutdown.* and the rules reload; these do not.
  EXPECT_EQ(app::changed_restart_only_keys(*a.config, *b.config),
            (std::vector<std::string>{"consumer", "http.idle_timeout", "http.listen",
                                      "postgres.dsn", "postgres.password"}));
  for (const auto& path : app::changed_restart_only_keys(*a.config, *b.config)) {
    const auto* spec = app::config_schema().find(path);
    ASSERT_NE(spec, nullptr) << path;
    EXPECT_FALSE(spec->reloadable) << path;
  }
}

TEST(ShutdownDrain, FinishesAsSoonAsNothingIsPending) {
  boost::asio::io_context io;
  std::size_t pending = 3;
  boost::asio::steady_timer work(io);
  std::function<void()> finish_one = [&] {
    work.expires_after(30ms);
    work.async_wait([&](boost::system::error_code) {
      if (--pending > 0) finish_one();
    });
  };
  finish_one();
  app::ShutdownDrain drain(
      io, [&] { return pending; }, 5ms);
  std::optional<std::size_t> left;
  auto t0 = std::chrono::steady_clock::now();
  drain.start(5s, [&](std::size_t n) { left = n; });
  ASSERT_TRUE(test::run_until(
      io, [&] { return left.has_value(); }, 5s));
  EXPECT_EQ(*left, 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST(ShutdownDrain, GivesUpAtTheDeadline) {
  boost::asio::io_context io;
  app::ShutdownDrain drain(
      io, [] { return std::size_t{2}; }, 5ms);
  std::optional<std::size_t> left;
  auto t0 = std::chrono::steady_clock::now();
  drain.start(150ms, [&](std::size_t n) { left = n; });
  ASSERT_TRUE(test::run_until(
      io, [&] { return left.has_value(); }, 5s));
  EXPECT_EQ(*left, 2u);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 1s);
}

TEST(ShutdownDrain, NothingPendingFinishesAtOnce) {
  boost::asio::io_context io;
  app::ShutdownDrain drain(io, [] { return std::size_t{0}; });
  std::optional<std::size_t> left;
  drain.start(10s, [&](std::size_t n) { left = n; });
  EXPECT_EQ(left, 0u);
}

}  // namespace
}  // namespace pgfanout
