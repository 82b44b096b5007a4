#include "rules/Action.hpp"

#include "log/Log.hpp"
#include "metrics/Metrics.hpp"
#include "rules/RuleSet.hpp"
#include "rules/Template.hpp"

namespace pgfanout::rules {

const std::string& ActionContext::rule_name() const {
  static const std::string none = "(none)";
  return rule != nullptr ? rule->name : none;
}

void ActionContext::succeeded() const {
  if (stats.run != nullptr) stats.run->inc();
  if (stats.latency != nullptr && received != std::chrono::steady_clock::time_point{}) {
    std::chrono::duration<double> d = std::chrono::steady_clock::now() - received;
    stats.latency->observe(d.count());
  }
}

void ActionContext::failed(std::string_view why) const {
  if (stats.failed != nullptr) stats.failed->inc();
  if (completion) completion->fail();
  if (log != nullptr) {
    log->log(spdlog::level::err, "failed:" + rule_name(),
             "rule " + rule_name() + ": action failed: " + std::string(why));
  }
}

void ActionContext::failed_after_success(std::string_view why) const {
  if (completion) completion->fail();
  if (log != nullptr) {
    log->log(spdlog::level::err, "failed:" + rule_name(),
             "rule " + rule_name() + ": follow-up of an action failed: " + std::string(why));
  }
}

void ActionContext::skipped(std::string_view why) const {
  if (stats.skipped != nullptr) stats.skipped->inc();
  if (log != nullptr) {
    log->warn("skipped:" + rule_name(),
              "rule " + rule_name() + ": action skipped: " + std::string(why));
  }
}

void ActionRegistry::add(std::string kind, ActionParser parser) {
  kinds_.push_back(std::move(kind));
  parsers_.push_back(std::move(parser));
}

void ActionRegistry::add_keys(std::span<const config::KeySpec> keys) {
  keys_.insert(keys_.end(), keys.begin(), keys.end());
}

const ActionParser* ActionRegistry::find(std::string_view kind) const {
  for (std::size_t i = 0; i < kinds_.size(); ++i) {
    if (kinds_[i] == kind) return &parsers_[i];
  }
  return nullptr;
}

bool render_for_action(const Template& tpl, const Event& event, const ActionContext& ctx,
                       std::string& out, bool allow_empty, Side side, bool glob_escape) {
  std::string missing;
  out.clear();
  if (!tpl.render(event, out, side, glob_escape ? Template::Escape::Glob : Template::Escape::None,
                  &missing)) {
    ctx.skipped("template \"" + tpl.source() + "\": field {" + missing +
                "} is missing or null in the payload on channel " + event.channel());
    return false;
  }
  if (!allow_empty && out.empty()) {
    ctx.skipped("template \"" + tpl.source() + "\" rendered an empty key on channel " +
                event.channel());
    return false;
  }
  return true;
}

}  // namespace pgfanout::rules
