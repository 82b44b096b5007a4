#include "webhook/WebhookExecutor.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "metrics/Metrics.hpp"
#include "rules/RuleSet.hpp"
#include "webhook/DeliveryRecords.hpp"

namespace pgfanout::webhook {

namespace asio = boost::asio;

struct WebhookExecutor::Delivery {
  const WebhookAction* action = nullptr;
  rules::ActionContext ctx;  // holds the rule set (and so `action`) alive
  std::string endpoint;      // rule/position
  int position = 0;
  std::string id;
  std::string target;
  std::string body;
  int attempts = 0;
  std::chrono::steady_clock::time_point enqueued;
};

struct WebhookExecutor::Timer {
  explicit Timer(asio::io_context& io) : t(io) {}
  asio::steady_timer t;
};

WebhookExecutor::WebhookExecutor(asio::io_context& io, WebhookSender& sender, int queue_limit)
    : io_(io), sender_(sender), queue_limit_(queue_limit), timer_(std::make_unique<Timer>(io)) {}

WebhookExecutor::~WebhookExecutor() = default;

void WebhookExecutor::run(const WebhookAction& hook, const rules::Event& event,
                          const rules::ActionContext& ctx) {
  if (event.outbox_id()) {
    // Durable: the DeliveryWorker records and sends it (once across instances).
    ctx.succeeded();
    return;
  }
  auto d = std::make_shared<Delivery>();
  std::string missing;
  if (!hook.render(event, d->target, d->body, missing)) {
    ctx.skipped("webhook " + hook.settings().url_source + ": field {" + missing +
                "} is missing or null in the payload on channel " + event.channel());
    return;
  }
  for (const auto& a : ctx.rule->actions) {
    if (a.get() == &hook) break;
    ++d->position;
  }
  if (event.lsn() && ctx.rule->durable) {
    if (!recorder_) {
      ctx.failed("durable webhook of an event from the WAL: no delivery recorder");
      return;
    }
    // Durable, from the WAL: recorded under an id derived from the event's position, so every
    // instance streaming it records the same row; the event's position is confirmed once the row
    // is written, and the DeliveryWorker sends it.
    DeliveryRow row{ctx.rule_name(),
                    d->position,
                    wal_delivery_id(*event.lsn(), ctx.rule_name(), d->position),
                    hook.settings().endpoint.origin(),
                    std::move(d->target),
                    std::move(d->body)};
    recorder_(std::move(row), [ctx](const std::string& error) {
      if (error.empty()) {
        ctx.succeeded();
      } else {
        ctx.failed("recording the durable webhook delivery failed: " + error);
      }
    });
    return;
  }
  d->endpoint = WebhookSender::endpoint_name(ctx.rule_name(), d->position);
  if (sender_.disabled(d->endpoint)) {
    sender_.count_dropped("disabled");
    ctx.failed("webhook " + d->endpoint + " is disabled (410 Gone) until the config is reloaded");
    return;
  }
  if (stopping_ || held_ >= static_cast<std::size_t>(queue_limit_)) {
    sender_.count_dropped(stopping_ ? "shutdown" : "overflow");
    ctx.failed(stopping_
                   ? std::string("shutting down: webhook delivery dropped")
                   : "webhook queue full (webhook.queue_limit " + std::to_string(queue_limit_) +
                         "): delivery dropped; use durable: true for rules that must not "
                         "lose deliveries");
    return;
  }
  d->action = &hook;
  d->ctx = ctx;
  d->id = sender_.random_id();
  d->enqueued = std::chrono::steady_clock::now();
  ++held_;
  sender_.queue_depth().set(static_cast<double>(held_));
  send(d);
}

void WebhookExecutor::send(const std::shared_ptr<Delivery>& d) {
  ++d->attempts;
  sender_.attempt(*d->action, d->endpoint, d->id, d->attempts, d->target, d->body,
                  [this, d](Outcome&& o) { on_outcome(d, std::move(o)); });
}

void WebhookExecutor::on_outcome(const std::shared_ptr<Delivery>& d, Outcome&& o) {
  if (abandoned_) return;
  switch (o.decision.verdict) {
    case Verdict::Delivered:
      sender_.count_delivered(std::chrono::steady_clock::now() - d->enqueued);
      d->ctx.succeeded();
      finish(d);
      return;
    case Verdict::Retry:
      if (stopping_) {
        sender_.count_dropped("shutdown");
        d->ctx.failed("shutting down: webhook " + d->id + " not retried (" + o.decision.reason +
                      ")");
        finish(d);
        return;
      }
      spdlog::debug("webhook {} attempt {} failed ({}); retrying", d->id, d->attempts,
                    o.decision.reason);
      waiting_.emplace(o.decision.next_attempt, d);
      arm_timer();
      return;
    case Verdict::Dead:
    case Verdict::EndpointGone: {
      DeadLetter letter{
          d->ctx.rule_name(), d->position, d->id,       d->action->settings().endpoint.origin(),
          d->target,          d->body,     d->attempts, o.result.status,
          o.decision.reason};
      if (!o.result.body_excerpt.empty()) letter.last_error += ": " + o.result.body_excerpt;
      sender_.count_dead(letter);
      if (dead_letters_) dead_letters_(letter);
      d->ctx.failed("webhook " + d->id + " gave up: " + o.decision.reason);
      finish(d);
      return;
    }
  }
}

void WebhookExecutor::finish(const std::shared_ptr<Delivery>&) {
  --held_;
  sender_.queue_depth().set(static_cast<double>(held_));
}

void WebhookExecutor::arm_timer() {
  if (waiting_.empty()) return;
  auto first = waiting_.begin()->first;
  if (timer_at_ != Clock::time_point{} && timer_at_ <= first) return;  // already armed earlier
  timer_at_ = first;
  auto delay = first - sender_.clock().now();
  timer_->t.expires_after(
      std::max(std::chrono::steady_clock::duration::zero(),
               std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay)));
  timer_->t.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    timer_at_ = {};
    on_timer();
  });
}

void WebhookExecutor::on_timer() {
  auto now = sender_.clock().now();
  while (!waiting_.empty() && waiting_.begin()->first <= now) {
    auto d = std::move(waiting_.begin()->second);
    waiting_.erase(waiting_.begin());
    send(d);
  }
  arm_timer();
}

void WebhookExecutor::begin_shutdown() {
  stopping_ = true;
  timer_->t.cancel();
  timer_at_ = {};
  if (waiting_.empty()) return;
  spdlog::warn(
      "shutting down: {} webhook deliveries waiting for a retry are dropped (non-durable rules)",
      waiting_.size());
  sender_.count_dropped("shutdown", waiting_.size());
  for (auto& [_, d] : waiting_) {
    d->ctx.failed("shutting down: webhook " + d->id + " dropped while waiting for a retry");
    finish(d);
  }
  waiting_.clear();
}

void WebhookExecutor::abandon() {
  begin_shutdown();
  if (held_ > 0) {
    spdlog::warn("{} webhook deliveries still in flight at the drain deadline are dropped", held_);
    sender_.count_dropped("shutdown", held_);
  }
  held_ = 0;
  abandoned_ = true;
  sender_.queue_depth().set(0);
}

}  // namespace pgfanout::webhook
