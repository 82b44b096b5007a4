#include "cache/RedisActions.hpp"

#include <algorithm>
#include <functional>

#include <boost/json/value.hpp>

#include "config/Diagnostics.hpp"
#include "config/YamlReader.hpp"
#include "rules/RuleSet.hpp"

namespace pgfanout::redis {

namespace {

using rules::Template;

std::optional<Template> parse_template(config::MapReader& item, std::string_view key,
                                       const std::string& text) {
  std::string error;
  auto tpl = Template::parse(text, error);
  if (!tpl) item.error(key, "bad template \"" + text + "\": " + error);
  return tpl;
}

// Reads `target:` and the item's position into `action`; refuses modifiers of other kinds.
bool read_common(config::MapReader& item, std::string_view kind, RedisAction& action) {
  action.target_ = item.string("target");
  if (item.has("target") && action.target_.empty()) {
    item.error("target", "a target name cannot be empty");
  }
  action.where_.line = item.line();
  action.where_.column = item.column();
  action.where_.path = item.yaml_path();
  if (item.has("target")) {
    auto n = item.node("target");
    action.where_.target_line = n.Mark().line + 1;
    action.where_.target_column = n.Mark().column + 1;
  }
  bool ok = true;
  for (std::string_view only_evict : {"again_after", "unlink"}) {
    if (kind != "evict" && item.has(only_evict)) {
      item.error(only_evict, "\"" + std::string(only_evict) + "\" applies to evict only");
      ok = false;
    }
  }
  return ok;
}

// Parses the list of key templates at `kind` into `out`. `refuse` names why a text is not
// allowed (or returns nullptr). Returns false when anything was reported.
bool parse_templates(config::MapReader& item, std::string_view kind, const char* none,
                     const std::function<const char*(const std::string&)>& refuse,
                     std::vector<rules::Template>& out) {
  bool ok = true;
  auto texts = item.string_list(kind);
  if (texts.empty()) {
    item.error(kind, none);
    ok = false;
  }
  for (const auto& text : texts) {
    auto tpl = parse_template(item, kind, text);
    if (!tpl) {
      ok = false;
      continue;
    }
    if (const char* why = refuse(text)) {
      item.error(kind, why);
      ok = false;
    }
    out.push_back(std::move(*tpl));
  }
  return ok;
}

std::unique_ptr<rules::Action> parse_evict(config::MapReader& item, std::string_view kind) {
  auto action = std::make_unique<EvictAction>();
  bool ok = read_common(item, kind, *action);
  ok = parse_templates(
           item, kind, "evict needs at least one key template",
           [](const std::string& text) -> const char* {
             return text.empty() ? "an empty key cannot be evicted" : nullptr;
           },
           action->keys) &&
       ok;
  action->unlink = !item.has("unlink") || item.boolean("unlink");
  if (item.has("again_after")) {
    action->again_after = item.duration("again_after");
    if (action->again_after.count() <= 0 || action->again_after > std::chrono::minutes(10)) {
      item.error("again_after", "must be between 1ms and 10m");
      ok = false;
    }
  }
  if (!ok) return nullptr;
  return action;
}

std::unique_ptr<rules::Action> parse_evict_pattern(config::MapReader& item, std::string_view kind) {
  auto action = std::make_unique<EvictPatternAction>();
  bool ok = read_common(item, kind, *action);
  // SCAN MATCH * over the whole database is what FLUSHDB is for; refuse it as a typo.
  ok = parse_templates(
           item, kind, "evict_pattern needs a pattern such as \"user:{id}:*\"",
           [](const std::string& text) -> const char* {
             return text.empty() || text == "*" ? "a pattern must not be empty or a bare \"*\""
                                                : nullptr;
           },
           action->patterns) &&
       ok;
  if (!ok) return nullptr;
  return action;
}

std::unique_ptr<rules::Action> parse_publish(config::MapReader& item, std::string_view kind) {
  auto action = std::make_unique<PublishAction>();
  bool ok = read_common(item, kind, *action);
  auto m = item.map(kind);
  if (!m) {
    if (item.has(kind)) {
      // map() reported a non-mapping already.
    } else {
      item.error(kind, "publish needs {channel: ..., message: ...}");
    }
    return nullptr;
  }
  std::string channel = m->string("channel");
  std::string message = m->string("message");
  if (!m->has("channel")) return nullptr;  // reported as required
  auto c = parse_template(*m, "channel", channel);
  auto msg = parse_template(*m, "message", message);
  if (channel.empty()) {
    m->error("channel", "a channel cannot be empty");
    ok = false;
  }
  if (!c || !msg || !ok) return nullptr;
  action->channel = std::move(*c);
  action->message = std::move(*msg);
  return action;
}

bool has_object(const rules::Event& event, const char* name) {
  static const std::vector<std::string> kNew{"new"}, kOld{"old"};
  const boost::json::value* v = event.find(name[0] == 'n' ? kNew : kOld);
  return v != nullptr && v->is_object();
}

}  // namespace

void render_evict_keys(const EvictAction& action, const rules::Event& event,
                       const rules::ActionContext& ctx, std::vector<std::string>& keys) {
  const bool has_new = has_object(event, "new");
  const bool has_old = has_object(event, "old");
  std::string key, missing;
  auto render = [&](const Template& tpl, rules::Side side) -> bool {
    key.clear();
    missing.clear();
    if (!tpl.render(event, key, side, Template::Escape::None, &missing)) {
      // {new.x} on a DELETE or {old.x} on an INSERT: that key simply does not exist for this op.
      if ((missing.starts_with("new.") && !has_new && has_old) ||
          (missing.starts_with("old.") && !has_old && has_new)) {
        return false;
      }
      ctx.skipped("template \"" + tpl.source() + "\": field {" + missing +
                  "} is missing or null in the payload on channel " + event.channel());
      return false;
    }
    if (key.empty()) {
      ctx.skipped("template \"" + tpl.source() + "\" rendered an empty key on channel " +
                  event.channel());
      return false;
    }
    return true;
  };
  for (const auto& tpl : action.keys) {
    if (!render(tpl, rules::Side::New)) continue;
    std::string first = key;
    keys.push_back(std::move(first));
    if (tpl.depends_on_side() && has_new && has_old && render(tpl, rules::Side::Old) &&
        key != keys.back()) {
      keys.push_back(key);
    }
  }
}

namespace {

std::span<const config::KeySpec> redis_action_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"rules[].actions[].evict", TemplateList, "", kReload, kPlain, kOptional,
   "Delete these Redis keys (UNLINK, pipelined and batched). On an UPDATE carrying `new` and "
   "`old`, a template that depends on the side is rendered for both and both keys go."},
  {"rules[].actions[].evict_pattern", TemplateList, "", kReload, kPlain, kOptional,
   "Delete the keys matching these glob patterns (SCAN MATCH + UNLINK, a bounded step at a "
   "time). Substituted values are glob-escaped."},
  {"rules[].actions[].publish", Map, "", kReload, kPlain, kOptional, "Redis PUBLISH."},
  {"rules[].actions[].publish.channel", Template, "", kReload, kPlain, kRequired,
   "The Redis channel."},
  {"rules[].actions[].publish.message", Template, "{payload}", kReload, kPlain, kOptional,
   "The message."},
  {"rules[].actions[].target", String, "", kReload, kPlain, kOptional,
   "Redis actions: the named `redis:` target. Default: the target named `default`, or the only one."},
  {"rules[].actions[].unlink", Bool, "true", kReload, kPlain, kOptional,
   "evict: UNLINK (frees memory in the background); false: DEL."},
  {"rules[].actions[].again_after", Duration, "", kReload, kPlain, kOptional,
   "evict: delete the same keys again after this delay, for readers that cached the old row "
   "just before the commit (see docs/cache-invalidation.md)."},
  };
  // clang-format on
  return kRows;
}

}  // namespace

void register_redis_actions(rules::ActionRegistry& registry) {
  registry.add_keys(redis_action_keys());
  registry.add("evict", parse_evict);
  registry.add("evict_pattern", parse_evict_pattern);
  registry.add("publish", parse_publish);
}

void check_redis_targets(const rules::RuleSet& rules, const RedisConfig& redis,
                         config::Diagnostics& diags) {
  for (const rules::Action* a : rules.all_actions()) {
    const auto* ra = dynamic_cast<const RedisAction*>(a);
    if (ra == nullptr) continue;
    const auto& where = ra->where();
    if (redis.targets.empty() && redis.configured) continue;  // its errors are reported
    if (redis.targets.empty()) {
      diags.error(where.line, where.column, where.path,
                  "\"" + std::string(a->kind()) +
                      "\" needs a Redis: add a redis: section (redis: {url: redis://host:6379/0})");
    } else if (ra->target().empty()) {
      if (redis.default_target() == nullptr) {
        diags.error(where.line, where.column, where.path,
                    "several Redis targets and none is named \"default\": give this action a "
                    "\"target\"");
      }
    } else if (redis.find(ra->target()) == nullptr) {
      std::string names;
      for (const auto& t : redis.targets) names += (names.empty() ? "" : ", ") + t.name;
      diags.error(where.target_line, where.target_column, where.path + ".target",
                  "unknown Redis target \"" + ra->target() + "\" (targets: " + names + ")");
    }
  }
}

}  // namespace pgfanout::redis
