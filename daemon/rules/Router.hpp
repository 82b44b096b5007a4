// Router: turns notifications into actions.
//
// For each notification the router counts it, parses the payload once, expands per-statement
// `rows`, matches the rules of its channel (in file order) and hands each action of each matching
// rule to the executor registered for its kind. It also runs the rules' `on_reconnect` actions
// after the listener (re)connects, and a rule's `on_gap` actions when an executor reports that
// work for that rule was dropped. All calls happen on the event loop thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "log/Log.hpp"
#include "rules/Action.hpp"
#include "rules/RuleSet.hpp"

namespace pgfanout {
class Metrics;
}

namespace pgfanout::rules {

class Router {
 public:
  explicit Router(Metrics& metrics);
  ~Router();

  void add_executor(std::string kind, ActionExecutor& executor);
  // Registers `executor` under each of its kinds().
  void add(ActionExecutor& executor);
  // The action kinds used by `rules` that have no executor (an error at start-up).
  std::vector<std::string> missing_executors(const RuleSet& rules) const;

  // Swaps in a new rule set; events already handed to executors finish with the old one.
  void set_rules(std::shared_ptr<const RuleSet> rules);
  const std::shared_ptr<const RuleSet>& rules() const { return rules_; }

  // Routes one notification. `completion` (may be null) is shared by every action run for it.
  void route(const Notification& n, std::shared_ptr<EventCompletion> completion = nullptr);
  // Lets executors send what they coalesced; call after a batch of route() calls.
  void flush();
  // The sum of the executors' pending() (each executor counted once).
  std::size_t pending() const;

  void run_on_reconnect();
  void run_on_gap(std::string_view rule_name);

 private:
  struct ChannelStats;
  ChannelStats& channel_stats(const std::string& channel);
  void run(const Rule& rule, const std::vector<std::unique_ptr<Action>>& actions,
           const Event& event, const std::shared_ptr<EventCompletion>& completion);

  Metrics& metrics_;
  std::shared_ptr<const RuleSet> rules_;
  std::unordered_map<std::string, ActionExecutor*> executors_;
  std::vector<ActionExecutor*> distinct_;
  std::vector<ActionExecutor*> executor_by_action_;
  std::vector<ActionStats> stats_by_action_;
  std::unordered_map<std::string, std::unique_ptr<ChannelStats>> channels_;
  RateLimitedLog log_;
};

}  // namespace pgfanout::rules
