#include "webhook/WebhookConfig.hpp"

#include "config/YamlReader.hpp"

namespace pgfanout::webhook {

void load_webhook_config(config::MapReader& root, WebhookConfig& w) {
  config::read_section(root, "webhook", [&](config::MapReader& m) {
    w.queue_limit = static_cast<int>(m.integer("queue_limit", 1, 10'000'000));
    w.max_connections_per_endpoint =
        static_cast<int>(m.integer("max_connections_per_endpoint", 1, 10'000));
    w.connect_timeout = m.duration("connect_timeout");
    w.idle_timeout = m.duration("idle_timeout");
    w.group = m.string("group");
    w.claim_batch = static_cast<int>(m.integer("claim_batch", 1, 100'000));
    w.max_in_flight = static_cast<int>(m.integer("max_in_flight", 1, 100'000));
    w.lease = m.duration("lease");
    w.poll_interval = m.duration("poll_interval");
    w.keep_done = m.duration("keep_done");
    if (w.group.empty()) m.error("group", "must not be empty");
    if (w.connect_timeout.count() < 100) m.error("connect_timeout", "must be at least 100ms");
    if (w.lease.count() < 1000) m.error("lease", "must be at least 1s");
    if (w.poll_interval.count() <= 0) m.error("poll_interval", "must be positive");
  });
}

}  // namespace pgfanout::webhook
