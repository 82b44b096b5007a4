// The `webhook:` section of the config: queues, connections and the durable delivery worker.
// Plain values and their loader; webhook_keys() declares the keys, each setting's default, range
// and member (config/Fields.hpp).
#pragma once

#include <chrono>
#include <span>
#include <string>

namespace pgfanout::config {
class MapReader;
struct KeySpec;
}  // namespace pgfanout::config

namespace pgfanout::webhook {

struct WebhookConfig {
  WebhookConfig();  // the defaults of webhook_keys()
  int queue_limit;
  int max_connections_per_endpoint;
  std::chrono::milliseconds connect_timeout;
  std::chrono::milliseconds idle_timeout;
  std::string group;
  int claim_batch;
  int max_in_flight;
  std::chrono::milliseconds lease;
  std::chrono::milliseconds poll_interval;
  std::chrono::milliseconds keep_done;
};

// The keys of `webhook:`, in documentation order.
std::span<const config::KeySpec> webhook_keys();

void load_webhook_config(config::MapReader& root, WebhookConfig& out);

}  // namespace pgfanout::webhook
