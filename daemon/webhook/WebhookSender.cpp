#include "webhook/WebhookSender.hpp"

#include <spdlog/spdlog.h>

#include "metrics/Metrics.hpp"

namespace pgfanout::webhook {

namespace {

std::vector<double> attempt_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

}  // namespace

WebhookSender::WebhookSender(boost::asio::io_context& io, Metrics& m,
                             const webhook::WebhookConfig& cfg, Clock& clock)
    : clock_(clock),
      client_(std::make_unique<WebhookClient>(
          io, WebhookClient::Options{cfg.max_connections_per_endpoint, cfg.connect_timeout,
                                     cfg.idle_timeout})),
      rng_(std::random_device{}()) {
  const char* classes[] = {"2xx", "3xx", "4xx", "5xx", "error"};
  for (int i = 0; i < 5; ++i) {
    attempts_[i] = &m.counter("pgfanout_webhook_attempts_total",
                              "Webhook delivery attempts, by response status class (error: no "
                              "response: connect error, timeout, connection closed)",
                              {{"status", classes[i]}});
  }
  attempt_seconds_ = &m.histogram("pgfanout_webhook_attempt_seconds",
                                  "Duration of one webhook attempt, waiting for a connection "
                                  "included",
                                  {}, attempt_buckets());
  delivery_seconds_ = &m.histogram("pgfanout_webhook_delivery_seconds",
                                   "Webhook delivery: queued (or recorded) to delivered, retries "
                                   "included",
                                   {});
  delivered_ = &m.counter("pgfanout_webhook_delivered_total", "Webhook deliveries answered 2xx");
  dead_ = &m.counter("pgfanout_webhook_dead_total",
                     "Webhook deliveries given up (permanent status, attempts exhausted, 410)");
  const char* help = "Webhook deliveries of non-durable rules dropped, by reason";
  dropped_overflow_ = &m.counter("pgfanout_webhook_dropped_total", help, {{"reason", "overflow"}});
  dropped_shutdown_ = &m.counter("pgfanout_webhook_dropped_total", help, {{"reason", "shutdown"}});
  dropped_disabled_ = &m.counter("pgfanout_webhook_dropped_total", help, {{"reason", "disabled"}});
  queue_depth_ = &m.gauge("pgfanout_webhook_queue_depth",
                          "Non-durable webhook deliveries held in memory (queued, in flight or "
                          "waiting for a retry)");
  m.gauge("pgfanout_webhook_queue_limit",
          "webhook.queue_limit: the most pgfanout_webhook_queue_depth may reach")
      .set(static_cast<double>(cfg.queue_limit));
  durable_in_flight_ =
      &m.gauge("pgfanout_webhook_durable_in_flight", "Durable deliveries this instance is sending");
  disabled_gauge_ = &m.gauge("pgfanout_webhook_endpoints_disabled",
                             "Webhook endpoints disabled by a 410 Gone until the next reload");
}

WebhookSender::~WebhookSender() = default;

std::string WebhookSender::random_id() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "msg_";
  auto a = rng_();
  auto b = rng_();
  for (int i = 0; i < 16; ++i) id += kHex[(a >> (i * 4)) & 15];
  for (int i = 0; i < 8; ++i) id += kHex[(b >> (i * 4)) & 15];
  return id;
}

HttpAttempt WebhookSender::build(const WebhookAction& action, const std::string& id,
                                 std::int64_t timestamp, const std::string& target,
                                 const std::string& body) const {
  const auto& s = action.settings();
  HttpAttempt a;
  a.endpoint = s.endpoint;
  a.method = s.method;
  a.target = target;
  a.timeout = s.timeout;
  a.headers = s.headers;
  a.headers.emplace_back("webhook-id", id);
  a.headers.emplace_back("webhook-timestamp", std::to_string(timestamp));
  if (!s.keys.empty())
    a.headers.emplace_back("webhook-signature", sign(s.keys, id, timestamp, body));
  a.body = body;
  return a;
}

void WebhookSender::attempt(const WebhookAction& action, const std::string& endpoint,
                            const std::string& id, int attempt, const std::string& target,
                            const std::string& body, std::function<void(Outcome&&)> done) {
  auto ts = std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch());
  auto started = std::chrono::steady_clock::now();
  // The policy is copied: a reload may free the action while the attempt runs.
  client_->send(
      build(action, id, ts.count(), target, body),
      [this, policy = action.settings().retry, endpoint, attempt, started,
       done = std::move(done)](AttemptResult&& r) {
        std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
        attempt_seconds_->observe(took.count());
        auto cls = status_class(r.status);
        int i = cls == "2xx" ? 0 : cls == "3xx" ? 1 : cls == "4xx" ? 2 : cls == "5xx" ? 3 : 4;
        attempts_[i]->inc();
        Outcome o;
        o.decision = policy.decide(attempt, r, clock_, rng_);
        if (o.decision.verdict == Verdict::EndpointGone && disabled_.insert(endpoint).second) {
          spdlog::error(
              "webhook {}: the endpoint answered 410 Gone; it is disabled until the "
              "config is reloaded",
              endpoint);
          disabled_gauge_->set(static_cast<double>(disabled_.size()));
        }
        o.result = std::move(r);
        done(std::move(o));
      });
}

void WebhookSender::reset_disabled() {
  disabled_.clear();
  disabled_gauge_->set(0);
}

void WebhookSender::count_delivered(std::chrono::steady_clock::duration since_enqueue) {
  delivered_->inc();
  delivery_seconds_->observe(std::chrono::duration<double>(since_enqueue).count());
}

void WebhookSender::count_dead(const DeadLetter& d) {
  dead_->inc();
  spdlog::error("webhook {} (rule {}, {}{}) is a dead letter after {} attempt(s): status {}, {}",
                d.webhook_id, d.rule, d.url, d.target, d.attempts, d.last_status, d.last_error);
}

void WebhookSender::count_dropped(const char* reason, std::uint64_t n) {
  std::string_view r(reason);
  (r == "overflow"   ? dropped_overflow_
   : r == "shutdown" ? dropped_shutdown_
                     : dropped_disabled_)
      ->inc(n);
}

}  // namespace pgfanout::webhook
