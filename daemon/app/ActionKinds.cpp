#include "app/ActionKinds.hpp"

#include "cache/RedisActions.hpp"
#include "hub/PushAction.hpp"
#include "rules/LogAction.hpp"
#include "webhook/WebhookAction.hpp"

namespace pgfanout::app {

const rules::ActionRegistry& action_kinds() {
  static const rules::ActionRegistry registry = [] {
    rules::ActionRegistry r;
    rules::register_log_action(r);
    redis::register_redis_actions(r);
    webhook::register_webhook_action(r);
    hub::register_push_action(r);
    return r;
  }();
  return registry;
}

}  // namespace pgfanout::app
