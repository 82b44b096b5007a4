#include "webhook/DeliveryWorker.hpp"

#include "webhook/DeliveryWorkerImpl.hpp"

namespace pgfanout::webhook {

std::vector<std::string> DeliveryWorker::claim_channels(const rules::RuleSet& rules) {
  std::vector<std::string> out;
  for (const auto& channel : rules.durable_channels()) {
    bool has_webhook = false;
    for (const rules::Rule* rule : rules.for_channel(channel)) {
      for (const auto& a : rule->actions) has_webhook = has_webhook || a->as<WebhookAction>();
    }
    if (has_webhook) out.push_back(channel);
  }
  return out;
}

pg::PgSession::Handlers DeliveryWorker::Impl::session_handlers() {
  pg::PgSession::Handlers h;
  h.on_ready = [this](bool) {
    busy = false;
    schedule_poll();
    ring();
  };
  h.on_lost = [this](const std::string&, const std::string& message, bool) {
    errors.inc();
    busy = false;
    // Rows in flight may or may not be written: their events come again (recording is idempotent).
    auto lost = std::move(recording);
    recording.clear();
    for (auto& r : lost) r.done("connection to PostgreSQL lost: " + message);
    // Stopped with nothing left to write: no reason to come back.
    if (stopped && pending_work() == 0) conn.stop();
  };
  return h;
}

void DeliveryWorker::Impl::set_rules(std::shared_ptr<const rules::RuleSet> r) {
  rules = std::move(r);
  channels = claim_channels(*rules);
  bool any = false;
  for (const rules::Action* a : rules->all_actions()) any = any || a->as<WebhookAction>();
  active = any;
  if (active && !stopped) conn.start();
  ring();
}

void DeliveryWorker::Impl::schedule_poll() {
  poll_timer.expires_after(opts.poll_interval);
  poll_timer.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped) return;
    if (SteadyClock::now() >= next_trim) want_trim = true;
    ring();
    schedule_poll();
  });
}

void DeliveryWorker::Impl::ring() {
  want_claim = true;
  want_take = true;
  cycle();
}

void DeliveryWorker::Impl::cycle() {
  if (busy || !conn.up()) return;
  if (!reports.empty()) return write_reports();
  if (!dead_letters.empty()) return write_dead_letter();
  if (!to_record.empty()) return write_rows();
  if (stopped) return;
  if (want_claim && !channels.empty()) return claim();
  if (want_take && in_flight < static_cast<std::size_t>(opts.max_in_flight)) return take();
  if (want_trim) return trim();
}

void DeliveryWorker::Impl::missing_sql(const pg::PgResult& r, const char* what) {
  errors.inc();
  if (r.sqlstate == "42883" || r.sqlstate == "42P01" || r.sqlstate == "3F000") {
    log.log(spdlog::level::err, "missing",
            "webhook deliveries: pgfanout.deliveries is missing in the database; run `pgfanout "
            "install` (durable webhooks wait until it exists)");
  } else {
    log.warn(what, std::string("webhook deliveries: ") + what + " failed: " + r.error);
  }
}

void DeliveryWorker::Impl::stop() {
  stopped = true;
  poll_timer.cancel();
  if (pending_work() == 0) conn.stop();
}

DeliveryWorker::DeliveryWorker(asio::io_context& io, Metrics& metrics, pg::PostgresConfig pg,
                               webhook::WebhookConfig options, std::string instance,
                               WebhookSender& sender)
    : impl_(std::make_unique<Impl>(io, metrics, std::move(pg), std::move(options),
                                   std::move(instance) + ":" + std::to_string(getpid()), sender)) {}

DeliveryWorker::~DeliveryWorker() {
  impl_->stopped = true;
  impl_->poll_timer.cancel();
  impl_->conn.stop();
}

void DeliveryWorker::set_rules(std::shared_ptr<const rules::RuleSet> rules) {
  impl_->set_rules(std::move(rules));
}
void DeliveryWorker::ring() {
  impl_->ring();
}
void DeliveryWorker::stop() {
  impl_->stop();
}
std::size_t DeliveryWorker::pending() const {
  return impl_->pending_work();
}
void DeliveryWorker::record(DeliveryRow row, std::function<void(const std::string&)> done) {
  if (!impl_->active || impl_->stopped) {
    done(impl_->stopped ? "shutting down" : "durable webhook deliveries are not running");
    return;
  }
  impl_->to_record.push_back({std::move(row), std::move(done)});
  impl_->cycle();
}

void DeliveryWorker::record_dead_letter(const DeadLetter& letter) {
  if (!impl_->active) return;
  impl_->dead_letters.push_back(letter);
  impl_->cycle();
}
bool DeliveryWorker::connected() const {
  return impl_->conn.up();
}

}  // namespace pgfanout::webhook
