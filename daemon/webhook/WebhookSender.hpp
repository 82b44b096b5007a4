// WebhookSender: one attempt of one webhook delivery, shared by the in-memory executor (rules on
// plain NOTIFY) and the durable DeliveryWorker.
//
// attempt() builds the request from the action's settings and the rendered target and body,
// adds the Standard Webhooks headers (the caller's stable `webhook-id`, `webhook-timestamp` of
// this attempt, `webhook-signature` for each secret), sends it through the WebhookClient,
// counts it, and hands back the RetryPolicy's decision. A 410 Gone disables the endpoint (the
// action, named `rule/position`) until set_rules() is called for a reload. It also owns the
// webhook metrics both paths update. Event loop thread only.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <string>

#include "webhook/Clock.hpp"
#include "webhook/RetryPolicy.hpp"
#include "webhook/WebhookAction.hpp"
#include "webhook/WebhookClient.hpp"
#include "webhook/WebhookConfig.hpp"

namespace boost::asio {
class io_context;
}

namespace pgfanout {
class Counter;
class Gauge;
class Histogram;
class Metrics;
}  // namespace pgfanout

namespace pgfanout::webhook {

struct Outcome {
  AttemptResult result;
  Decision decision;
};

// What a delivery that will not be retried leaves behind.
// A durable delivery of an event that is not in the outbox (an event from the WAL source): its
// row for pgfanout.deliveries, recorded under `webhook_id` — the same on every instance that
// streams the event — so that it is recorded, and sent, once across instances.
struct DeliveryRow {
  std::string rule;
  int action = 0;  // position in the rule's actions
  std::string webhook_id;
  std::string url;
  std::string target;
  std::string body;
};

struct DeadLetter {
  std::string rule;
  int action = 0;  // position in the rule's actions
  std::string webhook_id;
  std::string url;
  std::string target;
  std::string body;
  int attempts = 0;
  int last_status = 0;
  std::string last_error;  // the reason and a body excerpt
};

class WebhookSender {
 public:
  WebhookSender(boost::asio::io_context& io, Metrics& metrics, const webhook::WebhookConfig& cfg,
                Clock& clock = SystemClock::instance());
  ~WebhookSender();

  // Attempt number `attempt` (1-based) of the delivery `id` of `action`.
  void attempt(const WebhookAction& action, const std::string& endpoint_name, const std::string& id,
               int attempt, const std::string& target, const std::string& body,
               std::function<void(Outcome&&)> done);

  bool disabled(const std::string& endpoint_name) const {
    return disabled_.contains(endpoint_name);
  }
  // A reload: endpoints disabled by 410 are tried again.
  void reset_disabled();

  // The request a delivery makes (exposed for tests and the benchmark).
  HttpAttempt build(const WebhookAction& action, const std::string& id, std::int64_t timestamp,
                    const std::string& target, const std::string& body) const;

  void count_delivered(std::chrono::steady_clock::duration since_enqueue);
  void count_dead(const DeadLetter& letter);
  void count_dropped(const char* reason, std::uint64_t n = 1);

  static std::string endpoint_name(const std::string& rule, int position) {
    return rule + "/" + std::to_string(position);
  }
  // A fresh id for a delivery that has no outbox event: "msg_" and 24 random hex digits.
  std::string random_id();

  Clock& clock() { return clock_; }
  WebhookClient& client() { return *client_; }
  Gauge& queue_depth() { return *queue_depth_; }
  Gauge& durable_in_flight() { return *durable_in_flight_; }

 private:
  Clock& clock_;
  std::unique_ptr<WebhookClient> client_;
  std::mt19937_64 rng_;
  std::set<std::string> disabled_;
  Counter* attempts_[5];  // 2xx, 3xx, 4xx, 5xx, error
  Histogram* attempt_seconds_;
  Histogram* delivery_seconds_;
  Counter* delivered_;
  Counter* dead_;
  Counter* dropped_overflow_;
  Counter* dropped_shutdown_;
  Counter* dropped_disabled_;
  Gauge* queue_depth_;
  Gauge* durable_in_flight_;
  Gauge* disabled_gauge_;
};

}  // namespace pgfanout::webhook
