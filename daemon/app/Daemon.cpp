#include "app/Daemon.hpp"

#include <unistd.h>

#include <csignal>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "app/EventLoopLag.hpp"
#include "app/ProcessMetrics.hpp"
#include "app/ShutdownDrain.hpp"
#include "app/SystemdNotifier.hpp"
#include "cache/RedisEvictor.hpp"
#include "config/ConfigSchema.hpp"
#include "http/HealthChecks.hpp"
#include "http/HttpRouter.hpp"
#include "http/HttpServer.hpp"
#include "hub/Hub.hpp"
#include "log/Log.hpp"
#include "metrics/Metrics.hpp"
#include "pg/ConnInfo.hpp"
#include "pg/NotifyListener.hpp"
#include "pg/OutboxReader.hpp"
#include "pg/WalSource.hpp"
#include "rules/LogAction.hpp"
#include "rules/Router.hpp"
#include "webhook/DeliveryWorker.hpp"
#include "webhook/WebhookExecutor.hpp"
#include "webhook/WebhookSender.hpp"

namespace pgfanout::app {

namespace asio = boost::asio;

namespace {

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

// The daemon is the EventSink of its sources: events go to the router, except NOTIFYs on durable
// channels, which only ring the outbox reader and the delivery worker.
struct Daemon::Impl final : pg::EventSink {
  Impl(std::shared_ptr<const app::Config> cfg, DaemonOptions o)
      : options(std::move(o)),
        config(std::move(cfg)),
        signals(io, SIGTERM, SIGINT, SIGHUP),
        router(metrics),
        redis_evictor(io, metrics, config->redis,
                      [this](const std::string& rule) { router.run_on_gap(rule); }),
        listener(io, metrics, config->postgres, *this),
        outbox(io, metrics, config->postgres, config->outbox, config->consumer, *this),
        hub(io, metrics, config->hub, config->access, config->http, config->postgres,
            [this] { return router.rules(); }),
        http_server(io, http_router, metrics),
        notifier(io),
        process_metrics(metrics),
        drain(io, [this] { return router.pending() + deliveries.pending(); }) {
    // Each executor runs the kinds it names (ActionExecutor::kinds()).
    for (rules::ActionExecutor* e : std::initializer_list<rules::ActionExecutor*>{
             &log_executor, &redis_evictor, &webhook_executor, &hub.push_executor()}) {
      router.add(*e);
    }
    webhook_executor.set_durable_recorder(
        [this](webhook::DeliveryRow row, std::function<void(const std::string&)> done) {
          deliveries.record(std::move(row), std::move(done));
        });
    webhook_executor.set_dead_letter_sink(
        [this](const webhook::DeadLetter& letter) { deliveries.record_dead_letter(letter); });
    if (config->wal.enabled) {
      wal = std::make_unique<pg::WalSource>(io, metrics, config->postgres, config->wal,
                                            config->watch, *this);
    }
    hub.add_routes(http_router);
    register_health_checks();
    register_routes();
    for (const char* result : {"ok", "failed"}) reloads.with({result});
  }

  int run() {
    if (auto missing = router.missing_executors(*config->rules); !missing.empty()) {
      for (const auto& kind : missing) {
        spdlog::error("action kind \"{}\" is not available in this build", kind);
      }
      return 78;
    }
    router.set_rules(config->rules);
    deliveries.set_rules(config->rules);
    auto channels = config->rules->channels();
    spdlog::info("pgfanout {} starting: {} rule(s) on {} channel(s), PostgreSQL at {}",
                 PGFANOUT_VERSION, config->rules->rules().size(), channels.size(),
                 pg::describe(config->postgres.dsn));
    std::string error;
    if (!http_server.start(config->http, error)) {
      spdlog::critical("{}", error);
      return 1;
    }
    hub.start();
    wait_signal();
    notifier.start([this] { return status_line(); });
    redis_evictor.start();
    listener.start(std::move(channels));
    outbox.start(config->rules->durable_channels());
    if (wal) wal->start({});
    loop_lag.start();
    io.run();
    spdlog::info("pgfanout stopped");
    return exit_code;
  }

  // ---- health, routes, status

  void register_health_checks() {
    health.add("postgres", [this] {
      if (!listener.connected()) {
        return http::HealthStatus{false, ever_connected ? "disconnected" : "connecting"};
      }
      if (!listener.healthy()) return http::HealthStatus{false, "heartbeat overdue"};
      return http::HealthStatus{
          true, "listening on " + plural(listener.channels().size(), "channel", "channels")};
    });
    if (wal) {
      health.add("wal", [this] {
        auto s = wal->status();
        return http::HealthStatus{s.healthy(), s.detail()};
      });
    }
    hub.add_health_checks(health);
    if (redis_evictor.has_targets()) {
      health.add("redis", [this] {
        std::string detail;
        bool ok = redis_evictor.healthy(detail);
        return http::HealthStatus{ok, detail};
      });
    }
  }

  void register_routes() {
    http_router.add("GET", "/healthz",
                    [this](const http::HttpRequest&) { return health.response(); });
    http_router.add("GET", "/metrics", [this](const http::HttpRequest&) {
      process_metrics.update();
      pending_gauge.set(static_cast<std::int64_t>(router.pending()));
      http::HttpResponse r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = metrics.render();
      return r;
    });
  }

  std::string status_line() const {
    std::string s;
    if (listener.connected()) {
      s = "listening on " + plural(listener.channels().size(), "channel", "channels");
    } else {
      s = ever_connected ? "reconnecting to PostgreSQL" : "connecting to PostgreSQL";
    }
    s += "; " + plural(notifications, "notification", "notifications");
    if (auto pending = router.pending(); pending > 0) {
      s += "; " + plural(pending, "action", "actions") + " pending";
    }
    return s;
  }

  // ---- events from the sources (pg::EventSink)

  void on_event(pg::EventSource& from, pg::Notification&& n,
                std::shared_ptr<pg::EventCompletion> completion) override {
    if (&from == &listener) {
      ++notifications;
      // On a durable channel the NOTIFY is a doorbell: the event itself is read from the outbox.
      if (router.rules()->is_durable(n.channel)) {
        doorbells.inc();
        outbox.ring();
        deliveries.ring();
        return;
      }
    }
    router.route(n, std::move(completion));
  }

  void on_batch_end(pg::EventSource&) override { router.flush(); }

  void on_connected(pg::EventSource& from, bool first, bool missed_events) override {
    if (&from != &listener) return;
    outbox.ring();  // catch up on durable events
    deliveries.ring();
    if (first) {
      ever_connected = true;
      // LISTEN is established and HTTP is already up: the service is ready.
      spdlog::info("ready");
      notifier.ready(status_line());
    } else {
      spdlog::warn("listener reconnected: notifications sent while it was away are lost");
      hub.resync_all();  // subscribers may have missed events
      notifier.status(status_line());
    }
    // Events sent while the source was away (before its first connection too) are gone, so the
    // rules say what to do about it.
    if (missed_events) router.run_on_reconnect();
  }

  void on_disconnected(pg::EventSource&, const std::string&) override {
    notifier.status(status_line());
  }

  // A source lost events for good (a re-created replication slot): what the rules say to do
  // about a gap runs, and subscribers resynchronize.
  void on_events_lost(pg::EventSource& from, const std::string& why) override {
    spdlog::warn("{} source lost events ({}): running on_gap actions", from.name(), why);
    for (const auto& rule : router.rules()->rules()) {
      if (!rule->durable) router.run_on_gap(rule->name);
    }
    hub.resync_all();
  }

  void on_fatal(pg::EventSource&, const std::string& why) override {
    spdlog::critical("{}", why);
    exit_code = 1;
    shutdown();
  }

  // ---- signals

  void wait_signal() {
    signals.async_wait([this](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        if (stopping) {
          spdlog::info("SIGHUP ignored: shutting down");
        } else {
          reload();
        }
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

  // Stops taking work (HTTP, LISTEN), lets the executors finish what they hold until
  // shutdown.drain_timeout, then closes the remaining connections and leaves the loop.
  void shutdown() {
    if (stopping) return;
    stopping = true;
    http_server.stop_accepting();
    listener.stop();
    outbox.stop();
    if (wal) wal->stop();
    router.flush();
    webhook_executor.begin_shutdown();
    deliveries.stop();
    auto pending = router.pending() + deliveries.pending();
    notifier.stopping(pending == 0 ? "stopping"
                                   : "stopping: draining " + plural(pending, "action", "actions"));
    if (pending > 0) {
      spdlog::info("draining {} pending action(s) (up to {} ms)", pending,
                   config->shutdown.drain_timeout.count());
    }
    drain.start(config->shutdown.drain_timeout, [this](std::size_t left) {
      if (left > 0) {
        spdlog::warn(
            "shutdown.drain_timeout reached with {} action(s) still pending; they are "
            "dropped",
            left);
      }
      webhook_executor.abandon();
      http_server.close_connections();
      hub.stop([this] {  // the clients got their close frames
        notifier.stop();
        loop_lag.stop();
        signals.cancel();
        io.stop();
      });
    });
  }

  // ---- reload

  void reload() {
    spdlog::info("SIGHUP: reloading {}", options.config_path);
    notifier.reloading();
    apply_reload();
    notifier.ready(status_line());
  }

  void reload_failed() { reloads.with({"failed"}).inc(); }

  void apply_reload() {
    auto result = app::load_config(options.config_path);
    for (const auto& w : result.warnings) spdlog::warn("{}", w.to_string());
    if (!result.config) {
      for (const auto& e : result.errors) spdlog::error("{}", e.to_string());
      spdlog::error("reload failed with {} error(s); still running the previous config",
                    result.errors.size());
      reload_failed();
      return;
    }
    auto next = std::make_shared<app::Config>(*result.config);
    if (auto missing = router.missing_executors(*next->rules); !missing.empty()) {
      spdlog::error(
          "reload refused: action kind \"{}\" is not available; still running the "
          "previous config",
          missing.front());
      reload_failed();
      return;
    }
    keep_restart_only(*next);
    router.set_rules(next->rules);
    webhook_sender.reset_disabled();
    deliveries.set_rules(next->rules);
    listener.set_channels(next->rules->channels());
    hub.set_access(next->access);  // nothing dropped but what the new rules withdraw
    outbox.set_channels(next->rules->durable_channels());
    if (options.log_level_override.empty()) set_log_level(next->log_level);
    config = next;
    reloads.with({"ok"}).inc();
    spdlog::info("reloaded: {} rule(s) on {} channel(s)", config->rules->rules().size(),
                 config->rules->channels().size());
  }

  // Keys the schema marks restart-only keep their running values; each one that changed in the
  // file is named (with old and new value unless it is a secret).
  void keep_restart_only(app::Config& next) {
    for (const auto& path : app::changed_restart_only_keys(*config, next)) {
      const config::KeySpec* spec = app::config_schema().find(path);
      if (spec == nullptr || spec->secret) {
        spdlog::warn("reload: {} changed; it takes effect after a restart", path);
        continue;
      }
      auto value = [](const app::Config& c, const std::string& p) {
        auto it = c.restart_only_values.find(p);
        return it == c.restart_only_values.end() ? std::string("(unset)")
                                                 : "\"" + it->second + "\"";
      };
      spdlog::warn(
          "reload: {} changed from {} to {}; it takes effect after a restart (still "
          "using {})",
          path, value(*config, path), value(next, path), value(*config, path));
    }
    app::keep_restart_only(*config, next);
  }

  DaemonOptions options;
  std::shared_ptr<const app::Config> config;
  asio::io_context io{1};
  asio::signal_set signals;
  Metrics metrics;
  Gauge& pending_gauge = metrics.gauge(
      "pgfanout_actions_pending", "Actions queued or in flight in the executors (at scrape time)");
  rules::Router router;
  rules::LogExecutor log_executor;
  redis::RedisEvictor redis_evictor;
  webhook::WebhookSender webhook_sender{io, metrics, config->webhook};
  webhook::WebhookExecutor webhook_executor{io, webhook_sender, config->webhook.queue_limit};
  webhook::DeliveryWorker deliveries{
      io, metrics, config->postgres, config->webhook, config->consumer, webhook_sender};
  pg::NotifyListener listener;
  pg::OutboxReader outbox;
  std::unique_ptr<pg::WalSource> wal;  // when the config has `wal:` or a `via: wal` watch
  Counter& doorbells = metrics.counter("pgfanout_outbox_doorbells_total",
                                       "NOTIFYs on durable channels (they only wake the reader)");
  // Both results shown from the start, so that a first failure is an increase from 0.
  CounterFamily reloads{metrics, "pgfanout_reloads_total", "Config reloads, by result", {"result"}};
  http::HttpRouter http_router;
  hub::Hub hub;
  http::HealthChecks health;
  http::HttpServer http_server;
  SystemdNotifier notifier;
  ProcessMetrics process_metrics;
  EventLoopLag loop_lag{io, metrics};
  ShutdownDrain drain;
  std::uint64_t notifications = 0;
  bool ever_connected = false;
  bool stopping = false;
  int exit_code = 0;
};

Daemon::Daemon(std::shared_ptr<const app::Config> config, DaemonOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options))) {}

Daemon::~Daemon() = default;

int Daemon::run() {
  return impl_->run();
}

}  // namespace pgfanout::app
