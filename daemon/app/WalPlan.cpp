#include "app/WalPlan.hpp"

#include <cctype>

#include "app/Config.hpp"
#include "cache/RedisActions.hpp"
#include "rules/RuleSet.hpp"

namespace pgfanout::app {

namespace {

bool any_side_dependent(const std::vector<rules::Template>& templates) {
  for (const auto& t : templates) {
    if (t.depends_on_side()) return true;
  }
  return false;
}

bool needs_old_values(const Config& config, const pg::WatchSpec& w) {
  if (!w.changed.empty()) return true;
  const std::string channel = watch_channel(w);
  for (const auto& rule : config.rules->rules()) {
    if (rule->channel != channel) continue;
    for (const auto& action : rule->actions) {
      if (const auto* e = action->as<redis::EvictAction>(); e && any_side_dependent(e->keys)) {
        return true;
      }
      if (const auto* p = action->as<redis::EvictPatternAction>();
          p && any_side_dependent(p->patterns)) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

std::string watch_channel(const pg::WatchSpec& w) {
  if (!w.channel.empty()) return w.channel;
  // The relation's name: the last dot-separated part, without its double quotes.
  std::string name;
  bool quoted = false;
  for (std::size_t i = 0; i < w.table.size(); ++i) {
    char c = w.table[i];
    if (c == '"') {
      if (quoted && i + 1 < w.table.size() && w.table[i + 1] == '"') {
        name += '"';
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (c == '.' && !quoted) {
      name.clear();
    } else {
      name += quoted ? c : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return name + "_changed";
}

pg::WalPlan wal_plan(const Config& config) {
  pg::WalPlan plan;
  if (!config.wal.enabled) return plan;
  plan.wal = &config.wal;
  for (const auto& w : config.watch) {
    if (w.via == "wal" && needs_old_values(config, w)) plan.old_value_tables.push_back(w.table);
  }
  return plan;
}

}  // namespace pgfanout::app
