// DeliveryRecords: the durable webhook deliveries that claimed outbox events give rise to.
//
// For each claimed event (outbox id, channel, payload) it matches the rules (the one rule
// matcher, RuleSet::for_each_match) and renders every webhook action of every matching rule, row
// by row for a per-statement payload, into the columns pgfanout.delivery_record takes. The
// `webhook-id` of a delivery is derived from the outbox id, the rule's name, the action's position
// and the row, so it is the same on every attempt and on every instance (receivers deduplicate on
// it). A webhook whose template misses a field is skipped and reported through `skipped`. Pure:
// no I/O; any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace pgfanout::rules {
class RuleSet;
}

namespace pgfanout::webhook {

struct ClaimedEvent {
  std::int64_t outbox_id = 0;
  std::string channel;
  std::string payload;
};

// Column-wise, as the arrays of pgfanout.delivery_record($1..$7).
struct DeliveryRecords {
  std::vector<std::int64_t> events;
  std::vector<std::string> rule_names;
  std::vector<int> positions;
  std::vector<std::string> ids;
  std::vector<std::string> urls;
  std::vector<std::string> targets;
  std::vector<std::string> bodies;

  std::size_t size() const { return events.size(); }
};

// `skipped(rule, message)` is told of each webhook skipped for a missing field.
DeliveryRecords delivery_records(
    const rules::RuleSet& rules, const std::vector<ClaimedEvent>& claimed,
    const std::function<void(const std::string& rule, const std::string& message)>& skipped);

// The stable webhook-id of a delivery (row -1 for a row-level payload).
std::string delivery_id(std::int64_t outbox_id, const std::string& rule, std::size_t position,
                        int row);
// The same for an event from the WAL source, from its position: every instance streaming the
// event derives the same id.
std::string wal_delivery_id(std::uint64_t lsn, const std::string& rule, std::size_t position);

}  // namespace pgfanout::webhook
