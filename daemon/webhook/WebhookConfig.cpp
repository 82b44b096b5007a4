#include "webhook/WebhookConfig.hpp"

#include "config/Fields.hpp"

namespace pgfanout::webhook {

std::span<const config::KeySpec> webhook_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"webhook", Map, "", kRestart, kPlain, kOptional,
   "The webhook sender: queues, connections and durable delivery (see docs/webhooks.md)."},
  {"webhook.queue_limit", Int, "10000", kRestart, kPlain, kOptional,
   "Webhook deliveries of non-durable rules held in memory (queued, in flight or waiting for a "
   "retry). A delivery beyond it is dropped and counted in "
   "`pgfanout_webhook_dropped_total{reason=\"overflow\"}`; use `durable: true` when that matters.",
   config::field<&WebhookConfig::queue_limit>(config::between(1, 10'000'000))},
  {"webhook.max_connections_per_endpoint", Int, "8", kRestart, kPlain, kOptional,
   "Requests in flight to one endpoint (scheme, host, port) at a time; more wait their turn. "
   "Idle connections are kept alive and reused.",
   config::field<&WebhookConfig::max_connections_per_endpoint>(config::between(1, 10'000))},
  {"webhook.connect_timeout", Duration, "5s", kRestart, kPlain, kOptional,
   "How long resolving, connecting and the TLS handshake may take.",
   config::field<&WebhookConfig::connect_timeout>(config::at_least(100, "must be at least 100ms"))},
  {"webhook.idle_timeout", Duration, "30s", kRestart, kPlain, kOptional,
   "A kept-alive connection idle for longer is closed instead of reused.",
   config::field<&WebhookConfig::idle_timeout>()},
  {"webhook.group", String, "webhooks", kRestart, kPlain, kOptional,
   "Outbox consumer group whose position the instances share to record each durable event's "
   "deliveries once (pgfanout.outbox_claim).",
   config::field<&WebhookConfig::group>()},
  {"webhook.claim_batch", Int, "200", kRestart, kPlain, kOptional,
   "Outbox events claimed, and due deliveries taken, per query.",
   config::field<&WebhookConfig::claim_batch>(config::between(1, 100'000))},
  {"webhook.max_in_flight", Int, "256", kRestart, kPlain, kOptional,
   "Durable deliveries this instance sends at a time.",
   config::field<&WebhookConfig::max_in_flight>(config::between(1, 100'000))},
  {"webhook.lease", Duration, "1m", kRestart, kPlain, kOptional,
   "A durable delivery taken by an instance is its own for this long; if the instance dies "
   "mid-delivery, another one (or the restarted one) sends it again after the lease. Must be "
   "longer than the webhooks' timeout.",
   config::field<&WebhookConfig::lease>(config::at_least(1000, "must be at least 1s"))},
  {"webhook.poll_interval", Duration, "1s", kRestart, kPlain, kOptional,
   "Look for due durable deliveries (retries, expired leases) at least this often.",
   config::field<&WebhookConfig::poll_interval>(config::kPositive)},
  {"webhook.keep_done", Duration, "1d", kRestart, kPlain, kOptional,
   "Delivered rows stay in pgfanout.deliveries this long (for `pgfanout deliveries list`), then "
   "are deleted. Dead letters are kept until retried or deleted by hand.",
   config::field<&WebhookConfig::keep_done>()},
  };
  // clang-format on
  return kRows;
}

WebhookConfig::WebhookConfig() {
  config::apply_defaults(webhook_keys(), *this);
}

void load_webhook_config(config::MapReader& root, WebhookConfig& w) {
  config::read_section(root, "webhook", [&](config::MapReader& m) {
    config::read_fields(m, w);
    if (w.group.empty()) m.error("group", "must not be empty");
    config::check_fields(m, w);
  });
}

}  // namespace pgfanout::webhook
