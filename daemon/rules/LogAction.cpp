#include "rules/LogAction.hpp"

#include <spdlog/spdlog.h>

#include "config/YamlReader.hpp"

namespace pgfanout::rules {

void LogExecutor::run(const LogAction& log, const Event& event, const ActionContext& ctx) {
  std::string line;
  if (!render_for_action(log.message(), event, ctx, line, /*allow_empty=*/true)) return;
  spdlog::log(log.level(), "[{}] {}", ctx.rule_name(), line);
  ctx.succeeded();
}

namespace {

std::span<const config::KeySpec> log_action_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"rules[].actions[].log", Any, "", kReload, kPlain, kOptional,
   "Log the event: a template string, or `{message: TEMPLATE, level: info}`. "
   "Default message: `{channel} {payload}`."},
  {"rules[].actions[].log.message", Template, "{channel} {payload}", kReload, kPlain, kOptional,
   "The line to log."},
  {"rules[].actions[].log.level", String, "info", kReload, kPlain, kOptional,
   "Level of the line: debug, info, warn or error."},
  };
  // clang-format on
  return kRows;
}

}  // namespace

void register_log_action(ActionRegistry& registry) {
  registry.add_keys(log_action_keys());
  registry.add("log",
               [](config::MapReader& item, std::string_view kind) -> std::unique_ptr<Action> {
                 std::string message = "{channel} {payload}";
                 std::string level_name = "info";
                 YAML::Node value = item.node(kind);
                 if (value.IsMap()) {
                   config::MapReader m(value, item.schema_path() + "." + std::string(kind),
                                       item.key_path(kind), item.ctx());
                   message = m.string("message");
                   level_name = m.string("level");
                 } else if (value.IsScalar()) {
                   if (auto s = item.scalar(value, item.key_path(kind))) message = *s;
                 } else if (!value.IsNull()) {
                   item.error(kind, "expected a template string or {message, level}");
                   return nullptr;
                 }
                 spdlog::level::level_enum level = spdlog::level::info;
                 if (level_name == "debug") {
                   level = spdlog::level::debug;
                 } else if (level_name == "warn") {
                   level = spdlog::level::warn;
                 } else if (level_name == "error") {
                   level = spdlog::level::err;
                 } else if (level_name != "info") {
                   item.error(kind, "log level must be debug, info, warn or error");
                 }
                 std::string error;
                 auto tpl = Template::parse(message, error);
                 if (!tpl) {
                   item.error(kind, "bad template: " + error);
                   return nullptr;
                 }
                 return std::make_unique<LogAction>(std::move(*tpl), level);
               });
}

}  // namespace pgfanout::rules
