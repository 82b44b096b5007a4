// Fuzzes the payload router: any payload on a channel with filters and templated actions is
// parsed once, matched and rendered without a crash; every action is run, skipped or failed.
#include <cstddef>
#include <cstdint>
#include <string>

#include "app/Config.hpp"
#include "metrics/Metrics.hpp"
#include "rules/Router.hpp"
#include "rules/RuleSet.hpp"

#include <spdlog/spdlog.h>

using namespace pgfanout;

namespace {

class CountingExecutor final : public rules::ActionExecutor {
 public:
  void execute(const rules::Action& action, const rules::Event& event,
               const rules::ActionContext& ctx) override {
    (void)action;
    std::string out;
    std::string error;
    static const auto tpl = *rules::Template::parse("k:{id}:{new.name}:{loc.type}", error);
    if (rules::render_for_action(tpl, event, ctx, out, false)) ctx.succeeded();
  }
};

const char* kConfig = R"(postgres: {dsn: "host=x"}
rules:
  - name: a
    channel: c
    when: {op: [UPDATE, INSERT], fields: {new.status: [x, "1"]}}
    actions: [{log: "{id} {old.name}"}]
  - name: b
    channel: c
    actions: [{log: {message: "{payload}", level: debug}}]
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Metrics metrics;
  static rules::Router* router = [] {
    auto* r = new rules::Router(metrics);
    static CountingExecutor exec;
    r->add_executor("log", exec);
    auto loaded = app::load_config_text(kConfig, "fuzz.yaml");
    r->set_rules(loaded.config->rules);
    spdlog::set_level(spdlog::level::off);
    return r;
  }();
  rules::Notification n;
  n.channel = "c";
  n.payload.assign(reinterpret_cast<const char*>(data), size);
  router->route(n);
  router->flush();
  return 0;
}
