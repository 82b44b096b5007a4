#include "app/Daemon.hpp"

#include <unistd.h>

#include <csignal>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include "log/Log.hpp"
#include "metrics/Metrics.hpp"
#include "pg/ConnInfo.hpp"
#include "pg/NotifyListener.hpp"
#include "redis/RedisEvictor.hpp"
#include "rules/LogAction.hpp"
#include "rules/Router.hpp"

namespace pgfanout::app {

namespace asio = boost::asio;

struct Daemon::Impl {
  Impl(std::shared_ptr<const config::Config> cfg, DaemonOptions o)
      : options(std::move(o)),
        config(std::move(cfg)),
        signals(io, SIGTERM, SIGINT, SIGHUP),
        router(metrics),
        redis_evictor(io, metrics, config->redis,
                      [this](const std::string& rule) { router.run_on_gap(rule); }),
        listener(io, metrics, config->postgres,
                 pg::NotifyListener::Callbacks{
                     [this](rules::Notification&& n) { router.route(n); },
                     [this] { router.flush(); },
                     [this](bool first) { on_connected(first); },
                     [](const std::string&) {},
                     [this](const std::string& why) { on_fatal(why); }}) {
    router.add_executor("log", log_executor);
    for (const char* kind : {"evict", "evict_pattern", "publish"}) {
      router.add_executor(kind, redis_evictor);
    }
  }

  int run() {
    if (auto missing = router.missing_executors(*config->rules); !missing.empty()) {
      for (const auto& kind : missing) {
        spdlog::error("action kind \"{}\" is not available in this build", kind);
      }
      return 78;
    }
    router.set_rules(config->rules);
    wait_signal();
    auto channels = config->rules->channels();
    spdlog::info("pgfanout {} starting: {} rule(s) on {} channel(s), PostgreSQL at {}",
                 PGFANOUT_VERSION, config->rules->rules().size(), channels.size(),
                 pg::describe(config->postgres.dsn));
    redis_evictor.start();
    listener.start(std::move(channels));
    io.run();
    spdlog::info("pgfanout stopped");
    return exit_code;
  }

  void on_connected(bool first) {
    if (first) {
      spdlog::info("ready");
    } else {
      spdlog::warn("listener reconnected: notifications sent while it was away are lost");
    }
    // PostgreSQL keeps no notifications for absent listeners: whatever was sent while nobody
    // listened (before the first connection too) is gone, so the rules say what to do about it.
    router.run_on_reconnect();
  }

  void on_fatal(const std::string& why) {
    spdlog::critical("{}", why);
    exit_code = 1;
    shutdown();
  }

  void wait_signal() {
    signals.async_wait([this](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        reload();
        wait_signal();
        return;
      }
      if (stopping) {
        spdlog::warn("second signal: exiting now");
        std::_Exit(1);
      }
      spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      shutdown();
      wait_signal();
    });
  }

  void shutdown() {
    stopping = true;
    listener.stop();
    router.flush();
    // In-flight and queued Redis work gets a short drain; what is left is not acknowledged.
    redis_evictor.drain(std::chrono::seconds(2), [this] {
      signals.cancel();
      io.stop();
    });
  }

  void reload() {
    spdlog::info("SIGHUP: reloading {}", options.config_path);
    auto result = config::load_config(options.config_path);
    for (const auto& w : result.warnings) spdlog::warn("{}", w.to_string());
    if (!result.config) {
      for (const auto& e : result.errors) spdlog::error("{}", e.to_string());
      spdlog::error("reload failed with {} error(s); still running the previous config",
                    result.errors.size());
      metrics.counter("pgfanout_reloads_total", "Config reloads, by result", {{"result", "failed"}})
          .inc();
      return;
    }
    auto next = std::make_shared<config::Config>(*result.config);
    if (auto missing = router.missing_executors(*next->rules); !missing.empty()) {
      spdlog::error("reload refused: action kind \"{}\" is not available; still running the "
                    "previous config",
                    missing.front());
      metrics.counter("pgfanout_reloads_total", "Config reloads, by result", {{"result", "failed"}})
          .inc();
      return;
    }
    warn_restart_only(*next);
    router.set_rules(next->rules);
    listener.set_channels(next->rules->channels());
    if (options.log_level_override.empty()) set_log_level(next->log_level);
    config = next;
    metrics.counter("pgfanout_reloads_total", "Config reloads, by result", {{"result", "ok"}}).inc();
    spdlog::info("reloaded: {} rule(s) on {} channel(s)", config->rules->rules().size(),
                 config->rules->channels().size());
  }

  void warn_restart_only(config::Config& next) {
    const auto& a = config->postgres;
    auto& b = next.postgres;
    auto changed = [](auto& x, auto& y) { return !(x == y); };
    if (changed(a.dsn, b.dsn) || changed(a.password, b.password) ||
        changed(a.connect_timeout, b.connect_timeout) ||
        changed(a.heartbeat_interval, b.heartbeat_interval) ||
        changed(a.heartbeat_timeout, b.heartbeat_timeout) ||
        changed(a.reconnect_min, b.reconnect_min) || changed(a.reconnect_max, b.reconnect_max)) {
      spdlog::warn("reload: postgres settings changed; they take effect after a restart");
      b = a;
    }
    if (!(next.redis == config->redis)) {
      spdlog::warn("reload: redis settings changed; they take effect after a restart");
      next.redis = config->redis;
    }
    if (next.consumer != config->consumer) {
      spdlog::warn("reload: consumer changed; it takes effect after a restart");
      next.consumer = config->consumer;
    }
  }

  DaemonOptions options;
  std::shared_ptr<const config::Config> config;
  asio::io_context io{1};
  asio::signal_set signals;
  Metrics metrics;
  rules::Router router;
  rules::LogExecutor log_executor;
  redis::RedisEvictor redis_evictor;
  pg::NotifyListener listener;
  bool stopping = false;
  int exit_code = 0;
};

Daemon::Daemon(std::shared_ptr<const config::Config> config, DaemonOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options))) {}

Daemon::~Daemon() = default;

int Daemon::run() { return impl_->run(); }

}  // namespace pgfanout::app
