// The `webhook:` section of the config: queues, connections and the durable delivery worker.
// Plain values and their loader; the keys and defaults are declared in config/ConfigSchema.cpp.
#pragma once

#include <chrono>
#include <string>

namespace pgfanout::config {
class MapReader;
}

namespace pgfanout::webhook {

struct WebhookConfig {
  int queue_limit = 10'000;
  int max_connections_per_endpoint = 8;
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds idle_timeout{30'000};
  std::string group = "webhooks";
  int claim_batch = 200;
  int max_in_flight = 256;
  std::chrono::milliseconds lease{60'000};
  std::chrono::milliseconds poll_interval{1'000};
  std::chrono::milliseconds keep_done{86'400'000};
};

void load_webhook_config(config::MapReader& root, WebhookConfig& out);

}  // namespace pgfanout::webhook
