#include "app/WalPlan.hpp"

#include <algorithm>
#include <cctype>

#include "app/Config.hpp"
#include "cache/RedisActions.hpp"
#include "rules/RuleSet.hpp"

namespace pgfanout::app {

namespace {

void add_old_columns(const std::vector<rules::Template>& templates, std::vector<std::string>& out) {
  for (const auto& t : templates) {
    if (!t.depends_on_side()) continue;
    for (auto& c : t.old_row_columns()) {
      if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(std::move(c));
    }
  }
}

// The old values the rules on the watch's channel read: evicting the old row's keys needs the
// columns those keys are made of.
pg::OldValues old_values(const Config& config, const pg::WatchSpec& w) {
  pg::OldValues o;
  o.table = w.table;
  o.all = !w.changed.empty();
  const std::string channel = watch_channel(w);
  for (const auto& rule : config.rules->rules()) {
    if (rule->channel != channel) continue;
    for (const auto& action : rule->actions) {
      if (const auto* e = action->as<redis::EvictAction>()) add_old_columns(e->keys, o.columns);
      if (const auto* p = action->as<redis::EvictPatternAction>()) {
        add_old_columns(p->patterns, o.columns);
      }
    }
  }
  return o;
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
    if (w.via != "wal") continue;
    auto o = old_values(config, w);
    if (o.all || !o.columns.empty()) plan.old_values.push_back(std::move(o));
  }
  return plan;
}

}  // namespace pgfanout::app
