// RuleSet: the parsed `rules:` of a config, indexed by channel.
//
// Immutable once built and shared (shared_ptr<const RuleSet>) so that a reload can swap in a new
// set while executors still finish work for the old one. Rules of one channel run in file order.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rules/Action.hpp"
#include "rules/Template.hpp"

namespace pgfanout::config {
class MapReader;
}

namespace pgfanout::rules {

// The keys of `rules:` and of a rule, in documentation order (each action kind registers its own
// keys with its parser).
std::span<const config::KeySpec> rule_keys();

struct FieldMatch {
  std::string path_text;
  std::vector<std::string> path;
  std::vector<std::string> values;  // matches when the field's text equals any of these
};

struct WhenFilter {
  std::vector<std::string> ops;
  std::vector<std::string> tables;
  std::vector<std::string> schemas;
  std::vector<FieldMatch> fields;

  bool empty() const { return ops.empty() && tables.empty() && schemas.empty() && fields.empty(); }
  bool matches(const Event& event) const;
};

struct Rule {
  std::string name;
  std::string channel;
  WhenFilter when;
  bool durable = false;
  int line = 0;
  std::vector<std::unique_ptr<Action>> actions;
  std::vector<std::unique_ptr<Action>> on_reconnect;
  std::vector<std::unique_ptr<Action>> on_gap;
};

// Which rules for_each_match() considers.
enum class RuleScope { All, DurableOnly };

class RuleSet {
 public:
  // Parses the `rules:` list of `root` (the top-level mapping). Problems are reported through
  // the reader; the returned set holds the rules that parsed.
  static std::shared_ptr<RuleSet> parse(config::MapReader& root, const ActionRegistry& registry);

  const std::vector<std::unique_ptr<Rule>>& rules() const { return rules_; }
  const std::vector<const Rule*>& for_channel(std::string_view channel) const;

  // The one rule matcher: calls fn(rule, event, row) for every rule of the payload's channel
  // (file order; durable ones only for RuleScope::DurableOnly) whose `when` matches, for each
  // event of the payload — the payload itself (row = -1), or each row of a per-statement
  // payload's `rows` (row = its index). Returns whether any rule matched. The router, the durable
  // webhook worker and SSE replay all match events through here.
  template <class Fn>
  bool for_each_match(const std::shared_ptr<const ParsedPayload>& payload,
                      std::chrono::steady_clock::time_point received, EventPosition position,
                      Fn&& fn, RuleScope scope = RuleScope::All) const {
    const auto& rules = for_channel(payload->channel());
    bool matched = false;
    auto match = [&](const Event& event, int row) {
      for (const Rule* rule : rules) {
        if (scope == RuleScope::DurableOnly && !rule->durable) continue;
        if (!rule->when.matches(event)) continue;
        matched = true;
        fn(*rule, event, row);
      }
    };
    if (const auto* rows = payload->rows()) {
      for (std::size_t i = 0; i < rows->size(); ++i) {
        match(Event(payload, (*rows)[i], received, position), static_cast<int>(i));
      }
    } else {
      match(Event(payload, nullptr, received, position), -1);
    }
    return matched;
  }
  const Rule* find(std::string_view name) const;
  // Channels named by the rules, sorted, without duplicates.
  std::vector<std::string> channels() const;
  // Channels with at least one durable rule: their events come from pgfanout.outbox, and their
  // NOTIFYs are only doorbells. Sorted.
  std::vector<std::string> durable_channels() const;
  bool is_durable(std::string_view channel) const;
  // Every action of every rule (actions, on_reconnect, on_gap), indexed by Action::index().
  const std::vector<const Action*>& all_actions() const { return all_actions_; }
  const Rule& rule_of(const Action& a) const { return *action_rules_[a.index()]; }

  void add(std::unique_ptr<Rule> rule);

 private:
  std::vector<std::unique_ptr<Rule>> rules_;
  std::unordered_map<std::string, std::vector<const Rule*>> by_channel_;
  std::vector<const Action*> all_actions_;
  std::vector<const Rule*> action_rules_;
};

}  // namespace pgfanout::rules
