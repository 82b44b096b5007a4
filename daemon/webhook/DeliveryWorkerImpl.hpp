// DeliveryWorker's state, shared by its two halves: the session, the polling and the cycle that
// decides what to do next (DeliveryWorker.cpp), and the statements of each step — writing reports
// and dead letters, claiming outbox events, taking and sending due deliveries, trimming
// (DeliverySteps.cpp). Private to the webhook area.
#pragma once

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include "log/Log.hpp"
#include "metrics/Metrics.hpp"
#include "pg/ConnInfo.hpp"
#include "pg/PgSession.hpp"
#include "rules/RuleSet.hpp"
#include "webhook/DeliveryRecords.hpp"

#include "webhook/DeliveryWorker.hpp"

namespace pgfanout::webhook {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

struct DeliveryWorker::Impl {
  struct Report {
    std::int64_t id;
    int attempt;
    std::string state;
    int status;
    std::string error;
    std::int64_t delay_ms;
  };
  Impl(asio::io_context& io_, Metrics& m, pg::PostgresConfig p, webhook::WebhookConfig o,
       std::string inst, WebhookSender& s)
      : io(io_),
        pg(std::move(p)),
        opts(std::move(o)),
        instance(std::move(inst)),
        sender(s),
        conn(io_, pg, session_options(m), session_handlers()),
        poll_timer(io_),
        recorded(m.counter("pgfanout_webhook_recorded_total",
                           "Durable webhook deliveries recorded in pgfanout.deliveries")),
        errors(m.counter("pgfanout_webhook_store_errors_total",
                         "Failed queries and connections of the durable delivery worker")) {}

  static pg::PgSession::Options session_options(Metrics& m) {
    pg::PgSession::Options o;
    o.name = "webhook deliveries";
    o.refused =
        &m.counter(pg::kQueriesRefusedMetric, pg::kQueriesRefusedHelp, {{"connection", "webhook"}});
    return o;
  }

  pg::PgSession::Handlers session_handlers();
  void set_rules(std::shared_ptr<const rules::RuleSet> r);
  void schedule_poll();
  void ring();
  std::size_t pending_work() const {
    return in_flight + reports.size() + dead_letters.size() + to_record.size() + recording.size();
  }

  // One step at a time on the connection: outcomes first (they free rows), then dead letters,
  // claiming, taking, trimming.
  void cycle();
  template <typename Fn>
  void run(std::string sql, pg::PgConnection::Params params, Fn fn) {
    busy = true;
    // Dropped when the connection is lost meanwhile: on_lost clears `busy`.
    conn.query_current(std::move(sql), std::move(params),
                       [this, fn = std::move(fn)](pg::PgResult&& r) mutable {
                         busy = false;
                         fn(std::move(r));
                         cycle();
                       });
  }

  void missing_sql(const pg::PgResult& r, const char* what);
  void write_reports();
  void write_dead_letter();
  void write_rows();
  void claim();
  void record(pg::PgResult&& r);
  void finish_transaction(const char* sql, std::size_t recorded_rows, bool more);
  void take();
  void send(std::vector<std::optional<std::string>>& row);
  void trim();
  void stop();
  asio::io_context& io;
  pg::PostgresConfig pg;
  webhook::WebhookConfig opts;
  std::string instance;
  WebhookSender& sender;
  pg::PgSession conn;
  asio::steady_timer poll_timer;
  Counter& recorded;
  Counter& errors;
  RateLimitedLog log;
  std::shared_ptr<const rules::RuleSet> rules;
  std::vector<std::string> channels;
  bool active = false;
  bool stopped = false;
  bool busy = false;
  bool want_claim = false, want_take = false, want_trim = false;
  SteadyClock::time_point next_trim = SteadyClock::now() + std::chrono::seconds(10);
  std::size_t in_flight = 0;
  std::vector<Report> reports;
  std::vector<DeadLetter> dead_letters;
  struct PendingRow {
    DeliveryRow row;
    std::function<void(const std::string&)> done;
  };
  // WAL events' rows: waiting, being written. Bounded by the WAL source's wal.max_pending: each
  // row holds its event's completion, and the source stops reading while that many are open.
  std::vector<PendingRow> to_record, recording;
};

}  // namespace pgfanout::webhook
