// LogAction: the `log` action, which writes the rendered event to the daemon's log.
//
//   - log: "user {id} changed"                 # a template
//   - log: {message: "{channel} {payload}", level: info}
//
// It makes the core testable end to end without Redis or HTTP, and helps while writing rules.
// LogExecutor runs on the event loop.
#pragma once

#include <spdlog/common.h>

#include "rules/Action.hpp"
#include "rules/Template.hpp"

namespace pgfanout::rules {

class LogAction final : public Action {
 public:
  LogAction(Template message, spdlog::level::level_enum level)
      : message_(std::move(message)), level_(level) {}
  static constexpr std::string_view kKind = "log";
  std::string_view kind() const override { return kKind; }
  const Template& message() const { return message_; }
  spdlog::level::level_enum level() const { return level_; }

 private:
  Template message_;
  spdlog::level::level_enum level_;
};

class LogExecutor final : public TypedExecutor<LogAction> {
 public:
  void run(const LogAction& log, const Event& event, const ActionContext& ctx) override;
};

void register_log_action(ActionRegistry& registry);

}  // namespace pgfanout::rules
