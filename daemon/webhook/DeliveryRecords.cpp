#include "webhook/DeliveryRecords.hpp"

#include <cstdio>

#include <chrono>

#include "rules/RuleSet.hpp"
#include "webhook/WebhookAction.hpp"

namespace pgfanout::webhook {

namespace {

std::string hash_hex(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<std::size_t>(i)] = kHex[h & 15];
  return out;
}

}  // namespace

std::string delivery_id(std::int64_t outbox_id, const std::string& rule, std::size_t position,
                        int row) {
  std::string id =
      "msg_" + std::to_string(outbox_id) + "_" + hash_hex(rule) + "_" + std::to_string(position);
  if (row >= 0) id += "_" + std::to_string(row);
  return id;
}

std::string wal_delivery_id(std::uint64_t lsn, const std::string& rule, std::size_t position) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llX", static_cast<unsigned long long>(lsn));
  return std::string("msg_wal_") + hex + "_" + hash_hex(rule) + "_" + std::to_string(position);
}

DeliveryRecords delivery_records(
    const rules::RuleSet& rules, const std::vector<ClaimedEvent>& claimed,
    const std::function<void(const std::string& rule, const std::string& message)>& skipped) {
  DeliveryRecords out;
  auto received = std::chrono::steady_clock::now();
  for (const auto& c : claimed) {
    auto payload = rules::ParsedPayload::parse(c.channel, c.payload);
    rules.for_each_match(payload, received, c.outbox_id,
                         [&](const rules::Rule& rule, const rules::Event& event, int row) {
                           for (std::size_t pos = 0; pos < rule.actions.size(); ++pos) {
                             const auto* hook = rule.actions[pos]->as<WebhookAction>();
                             if (hook == nullptr) continue;
                             std::string target, body, missing;
                             if (!hook->render(event, target, body, missing)) {
                               if (skipped) {
                                 skipped(rule.name, "rule " + rule.name +
                                                        ": webhook skipped for outbox event " +
                                                        std::to_string(c.outbox_id) + ": field {" +
                                                        missing + "} is missing");
                               }
                               continue;
                             }
                             out.events.push_back(c.outbox_id);
                             out.rule_names.push_back(rule.name);
                             out.positions.push_back(static_cast<int>(pos));
                             out.ids.push_back(delivery_id(c.outbox_id, rule.name, pos, row));
                             out.urls.push_back(hook->settings().endpoint.origin());
                             out.targets.push_back(std::move(target));
                             out.bodies.push_back(std::move(body));
                           }
                         });
  }
  return out;
}

}  // namespace pgfanout::webhook
