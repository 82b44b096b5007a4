#include "rules/RuleSet.hpp"

#include <algorithm>
#include <set>

#include <boost/json/value.hpp>

#include "config/ChannelName.hpp"
#include "config/YamlReader.hpp"

namespace pgfanout::rules {

std::span<const config::KeySpec> rule_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"rules", List, "", kReload, kPlain, kRequired, "What to do with notifications."},
  {"rules[].name", String, "", kReload, kPlain, kRequired, "Unique rule name (used in logs and metrics)."},
  {"rules[].channel", String, "", kReload, kPlain, kRequired,
   "NOTIFY channel (case-sensitive, as pg_notify sends it). 1 to 63 bytes, no NUL, not starting "
   "with `pgfanout.` (reserved for the daemon's own heartbeat)."},
  {"rules[].when", Map, "", kReload, kPlain, kOptional,
   "Filter: the rule runs only for notifications that match every given condition."},
  {"rules[].when.op", StringList, "", kReload, kPlain, kOptional,
   "INSERT, UPDATE, DELETE or TRUNCATE (the payload's `op`)."},
  {"rules[].when.table", StringList, "", kReload, kPlain, kOptional, "The payload's `table`."},
  {"rules[].when.schema", StringList, "", kReload, kPlain, kOptional, "The payload's `schema`."},
  {"rules[].when.fields", Map, "", kReload, kPlain, kOptional,
   "Equality on payload fields: `{path: value}` or `{path: [v1, v2]}`; paths as in templates."},
  {"rules[].when.fields.*", Any, "", kReload, kPlain, kOptional, "A value or a list of values."},
  {"rules[].durable", Bool, "false", kReload, kPlain, kOptional,
   "Read this channel's events from pgfanout.outbox (at-least-once); the NOTIFY only wakes the "
   "reader. For events from the WAL source: webhooks are recorded in pgfanout.deliveries and sent "
   "once across instances (see docs/wal.md)."},
  {"rules[].actions", List, "", kReload, kPlain, kRequired, "Actions run for each matching notification."},
  {"rules[].on_reconnect", List, "", kReload, kPlain, kOptional,
   "Actions run after the listener (re)connects, when notifications may have been missed. "
   "Same action keys as `actions`; templates can use only {channel}."},
  {"rules[].on_gap", List, "", kReload, kPlain, kOptional,
   "Actions run when events of this rule may have been lost: an action could not be queued "
   "(e.g. Redis down too long), or, for a rule that is not durable, the WAL source's replication "
   "slot was lost. Same action keys as `actions`; templates can use only {channel}."},
  };
  // clang-format on
  return kRows;
}

namespace {

bool contains(const std::vector<std::string>& list, std::string_view v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

std::vector<std::unique_ptr<Action>> parse_actions(config::MapReader& rule, std::string_view key,
                                                   const ActionRegistry& registry) {
  std::vector<std::unique_ptr<Action>> out;
  rule.each(
      key,
      [&](config::MapReader& item, std::size_t) {
        std::vector<std::string> kinds;
        for (const auto& k : item.keys()) {
          if (registry.find(k) != nullptr) kinds.push_back(k);
        }
        if (kinds.empty()) {
          // An unknown key was already reported (with a hint); do not pile a second error on it.
          for (const auto& k : item.keys()) {
            if (item.ctx().schema.find("rules[].actions[]." + k) == nullptr) return;
          }
          std::string list;
          for (const auto& k : registry.kinds()) list += (list.empty() ? "" : ", ") + k;
          item.error_here("an action needs one of: " + list);
          return;
        }
        if (kinds.size() > 1) {
          item.error(kinds[1], "one action per list item (found \"" + kinds[0] + "\" and \"" +
                                   kinds[1] + "\")");
          return;
        }
        auto action = (*registry.find(kinds[0]))(item, kinds[0]);
        // A modifier the action's parser did not read does not apply to it
        // (`again_after:` on a log action): say so rather than ignore it.
        bool stray = false;
        for (const auto& extra : item.unread_keys()) {
          if (item.ctx().schema.find("rules[].actions[]." + extra) == nullptr)
            continue;  // reported
          item.error(extra, "\"" + extra + "\" does not apply to a " + kinds[0] + " action");
          stray = true;
        }
        if (action && !stray) out.push_back(std::move(action));
      },
      "rules[].actions[]");
  return out;
}

}  // namespace

bool WhenFilter::matches(const Event& event) const {
  if (!ops.empty() && !contains(ops, event.envelope_string("op"))) return false;
  if (!tables.empty() && !contains(tables, event.envelope_string("table"))) return false;
  if (!schemas.empty() && !contains(schemas, event.envelope_string("schema"))) return false;
  std::string text;
  for (const auto& f : fields) {
    const boost::json::value* v = event.find(f.path);
    if (v == nullptr) return false;
    text.clear();
    if (!append_value_text(*v, text)) text = "null";
    if (!contains(f.values, text)) return false;
  }
  return true;
}

void RuleSet::add(std::unique_ptr<Rule> rule) {
  for (auto* list : {&rule->actions, &rule->on_reconnect, &rule->on_gap}) {
    for (auto& a : *list) {
      a->index_ = all_actions_.size();
      all_actions_.push_back(a.get());
      action_rules_.push_back(rule.get());
    }
  }
  by_channel_[rule->channel].push_back(rule.get());
  rules_.push_back(std::move(rule));
}

const std::vector<const Rule*>& RuleSet::for_channel(std::string_view channel) const {
  static const std::vector<const Rule*> none;
  auto it = by_channel_.find(std::string(channel));
  return it == by_channel_.end() ? none : it->second;
}

const Rule* RuleSet::find(std::string_view name) const {
  for (const auto& r : rules_) {
    if (r->name == name) return r.get();
  }
  return nullptr;
}

std::vector<std::string> RuleSet::channels() const {
  std::vector<std::string> out;
  out.reserve(by_channel_.size());
  for (const auto& [c, _] : by_channel_) out.push_back(c);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> RuleSet::durable_channels() const {
  std::vector<std::string> out;
  for (const auto& [c, rules] : by_channel_) {
    if (std::any_of(rules.begin(), rules.end(), [](const Rule* r) { return r->durable; })) {
      out.push_back(c);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool RuleSet::is_durable(std::string_view channel) const {
  for (const Rule* r : for_channel(channel)) {
    if (r->durable) return true;
  }
  return false;
}

std::shared_ptr<RuleSet> RuleSet::parse(config::MapReader& root, const ActionRegistry& registry) {
  auto set = std::make_shared<RuleSet>();
  std::set<std::string> names;
  root.each("rules", [&](config::MapReader& r, std::size_t) {
    auto rule = std::make_unique<Rule>();
    rule->line = r.line();
    rule->name = r.string("name");
    rule->channel = r.string("channel");
    if (r.has("name")) {
      if (rule->name.empty()) {
        r.error("name", "a rule name cannot be empty");
      } else if (!names.insert(rule->name).second) {
        r.error("name", "duplicate rule name \"" + rule->name + "\"");
      }
    }
    if (r.has("channel")) {
      if (auto problem = config::channel_name_problem(rule->channel); !problem.empty()) {
        r.error("channel", std::move(problem));
      }
    }
    rule->durable = r.boolean("durable");
    if (auto when = r.map("when")) {
      rule->when.ops = when->string_list("op");
      for (auto& op : rule->when.ops) {
        std::transform(op.begin(), op.end(), op.begin(), ::toupper);
        if (op != "INSERT" && op != "UPDATE" && op != "DELETE" && op != "TRUNCATE") {
          when->error("op", "unknown op \"" + op + "\" (INSERT, UPDATE, DELETE or TRUNCATE)");
        }
      }
      rule->when.tables = when->string_list("table");
      rule->when.schemas = when->string_list("schema");
      if (auto fields = when->map("fields")) {
        for (const auto& key : fields->keys()) {
          FieldMatch m;
          m.path_text = key;
          std::string error;
          auto tpl = Template::parse("{" + key + "}", error);
          if (!tpl || key.find('{') != std::string::npos) {
            fields->error(key, "bad field path \"" + key + "\"");
            continue;
          }
          std::size_t start = 0;
          while (true) {
            auto dot = key.find('.', start);
            m.path.push_back(key.substr(start, dot == std::string::npos ? dot : dot - start));
            if (dot == std::string::npos) break;
            start = dot + 1;
          }
          m.values = fields->string_list(key);
          rule->when.fields.push_back(std::move(m));
        }
      }
    }
    rule->actions = parse_actions(r, "actions", registry);
    rule->on_reconnect = parse_actions(r, "on_reconnect", registry);
    rule->on_gap = parse_actions(r, "on_gap", registry);
    if (r.has("actions") && rule->actions.empty() && r.node("actions").IsSequence() &&
        r.node("actions").size() == 0) {
      r.error("actions", "a rule needs at least one action");
    }
    set->add(std::move(rule));
  });
  // A channel is durable as a whole: say so when some of its rules do not ask for it.
  for (const auto& rule : set->rules()) {
    if (!rule->durable && set->is_durable(rule->channel)) {
      root.ctx().diags.warning(rule->line, 1, "rules",
                               "rule \"" + rule->name + "\" is not durable, but channel \"" +
                                   rule->channel +
                                   "\" has durable rules: its events come from the outbox too");
    }
  }
  return set;
}

}  // namespace pgfanout::rules
