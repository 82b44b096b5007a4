#include "rules/Router.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "metrics/Metrics.hpp"

namespace pgfanout::rules {

struct Router::ChannelStats {
  Counter* received;
  Counter* unrouted;
  Counter* malformed;
  Counter* invalid_utf8;
  Counter* unmatched;
};

Router::Router(Metrics& metrics) : metrics_(metrics) {}
Router::~Router() = default;

std::vector<std::string> Router::missing_executors(const RuleSet& rules) const {
  std::vector<std::string> missing;
  for (const Action* a : rules.all_actions()) {
    std::string kind(a->kind());
    if (!executors_.contains(kind) &&
        std::find(missing.begin(), missing.end(), kind) == missing.end()) {
      missing.push_back(kind);
    }
  }
  return missing;
}

void Router::set_rules(std::shared_ptr<const RuleSet> rules) {
  std::vector<ActionExecutor*> executors;
  std::vector<ActionStats> stats;
  executors.reserve(rules->all_actions().size());
  stats.reserve(rules->all_actions().size());
  for (const Action* a : rules->all_actions()) {
    auto it = executors_.find(std::string(a->kind()));
    executors.push_back(it == executors_.end() ? nullptr : it->second);
    Labels labels{{"rule", rules->rule_of(*a).name}, {"kind", std::string(a->kind())}};
    stats.push_back(ActionStats{
        &metrics_.counter("pgfanout_actions_total", "Actions completed, by rule and kind", labels),
        &metrics_.counter("pgfanout_actions_failed_total", "Actions that failed, by rule and kind",
                          labels),
        &metrics_.counter("pgfanout_actions_skipped_total",
                          "Actions skipped for an event (missing template field, empty key)",
                          labels),
        &metrics_.histogram("pgfanout_action_latency_seconds",
                            "Time from notification received to action done", labels)});
  }
  // The channels' counters too, so that the first notification on a channel registers nothing.
  for (const auto& rule : rules->rules()) channel_stats(rule->channel);
  executor_by_action_ = std::move(executors);
  stats_by_action_ = std::move(stats);
  rules_ = std::move(rules);
}

Router::ChannelStats& Router::channel_stats(const std::string& channel) {
  auto it = channels_.find(channel);
  if (it != channels_.end()) return *it->second;
  // Registered by set_rules() for every channel a rule names. Channels are LISTENed by name from
  // the config, so this map stays bounded; a channel no rule names (left over from a reload) is
  // still counted under its own name, registered on its first notification.
  Labels l{{"channel", channel}};
  auto stats = std::make_unique<ChannelStats>(ChannelStats{
      &metrics_.counter("pgfanout_notifications_total", "Notifications received, by channel", l),
      &metrics_.counter("pgfanout_notifications_unrouted_total",
                        "Notifications on a channel no rule names", l),
      &metrics_.counter("pgfanout_payload_errors_total",
                        "Payloads that looked like JSON but did not parse (kept as text)",
                        {{"channel", channel}, {"reason", "malformed_json"}}),
      &metrics_.counter("pgfanout_payload_errors_total",
                        "Payloads that looked like JSON but did not parse (kept as text)",
                        {{"channel", channel}, {"reason", "invalid_utf8"}}),
      &metrics_.counter("pgfanout_notifications_unmatched_total",
                        "Notifications whose channel has rules but no rule's `when` matched", l)});
  return *channels_.emplace(channel, std::move(stats)).first->second;
}

void Router::route(const Notification& n, std::shared_ptr<EventCompletion> completion) {
  ChannelStats& cs = channel_stats(n.channel);
  cs.received->inc();
  if (!rules_) return;
  const auto& rules = rules_->for_channel(n.channel);
  if (rules.empty()) {
    cs.unrouted->inc();
    log_.warn("unrouted:" + n.channel,
              "notification on channel \"" + n.channel + "\" that no rule names; ignored");
    return;
  }
  auto payload = ParsedPayload::parse(n.channel, n.payload);
  if (payload->problem() != PayloadProblem::None) {
    bool utf8 = payload->problem() == PayloadProblem::InvalidUtf8;
    (utf8 ? cs.invalid_utf8 : cs.malformed)->inc();
    log_.warn("payload:" + n.channel,
              "payload on channel \"" + n.channel + "\" is not valid " + (utf8 ? "UTF-8" : "JSON") +
                  " (" + std::to_string(n.payload.size()) +
                  " bytes); treated as text, so templates naming fields skip their action");
  }
  bool matched = rules_->for_each_match(payload, n.received, {n.outbox_id, n.lsn, n.outbox_txid},
                                        [&](const Rule& rule, const Event& event, int) {
                                          run(rule, rule.actions, event, completion);
                                        });
  if (!matched) cs.unmatched->inc();
}

void Router::run(const Rule& rule, const std::vector<std::unique_ptr<Action>>& actions,
                 const Event& event, const std::shared_ptr<EventCompletion>& completion) {
  for (const auto& action : actions) {
    ActionExecutor* ex = executor_by_action_[action->index()];
    ActionContext ctx{&rule, rules_,     stats_by_action_[action->index()],
                      &log_, completion, event.received()};
    if (ex == nullptr) {
      ctx.failed("no executor for action kind \"" + std::string(action->kind()) + "\"");
      continue;
    }
    ex->execute(*action, event, ctx);
  }
}

void Router::add(ActionExecutor& executor) {
  for (auto kind : executor.kinds()) add_executor(std::string(kind), executor);
}

void Router::add_executor(std::string kind, ActionExecutor& executor) {
  executors_[std::move(kind)] = &executor;
  // One executor may serve several kinds (Redis: evict, evict_pattern, publish); flush and count
  // it once.
  if (std::find(distinct_.begin(), distinct_.end(), &executor) == distinct_.end()) {
    distinct_.push_back(&executor);
  }
}

void Router::flush() {
  for (auto* ex : distinct_) ex->flush();
}

std::size_t Router::pending() const {
  std::size_t total = 0;
  for (const auto* ex : distinct_) total += ex->pending();
  return total;
}

void Router::run_on_reconnect() {
  if (!rules_) return;
  for (const auto& rule : rules_->rules()) {
    if (rule->on_reconnect.empty()) continue;
    spdlog::info("rule {}: running on_reconnect actions", rule->name);
    run(*rule, rule->on_reconnect, Event::synthetic(rule->channel), nullptr);
  }
  flush();
}

void Router::run_on_gap(std::string_view rule_name) {
  if (!rules_) return;
  const Rule* rule = rules_->find(rule_name);
  if (rule == nullptr || rule->on_gap.empty()) return;
  spdlog::warn("rule {}: running on_gap actions", rule->name);
  run(*rule, rule->on_gap, Event::synthetic(rule->channel), nullptr);
  flush();
}

}  // namespace pgfanout::rules
