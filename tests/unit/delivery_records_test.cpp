// delivery_records(): claimed outbox events become one durable delivery per webhook action of each
// matching rule (row by row for per-statement payloads), with webhook-ids that depend only on the
// outbox id, the rule, the action's position and the row; other action kinds, rules that do not
// match and webhooks missing a template field give no delivery (the latter reported).
#include <gtest/gtest.h>

#include "app/Config.hpp"
#include "rules/RuleSet.hpp"
#include "webhook/DeliveryRecords.hpp"

namespace pgfanout::webhook {
namespace {

std::shared_ptr<const rules::RuleSet> rules_of(const std::string& yaml) {
  auto r = app::load_config_text("postgres: {dsn: host=x}\nrules:\n" + yaml, "t.yaml",
                                 [](std::string_view) { return std::nullopt; });
  std::string errors;
  for (const auto& e : r.errors) errors += e.to_string() + "\n";
  EXPECT_TRUE(r.config) << errors;
  return r.config ? r.config->rules : nullptr;
}

const char* kRules = R"(
  - name: orders
    channel: orders
    durable: true
    when: {op: [UPDATE]}
    actions:
      - log: "order {id}"
      - webhook: {url: "http://127.0.0.1:9/orders/{id}", body: '{{"id": {id}}}'}
      - webhook: {url: "http://127.0.0.1:9/notes/{note}"}
  - name: audit
    channel: orders
    durable: true
    actions:
      - webhook: {url: "http://127.0.0.1:9/audit"}
)";

TEST(DeliveryRecords, OnePerWebhookOfEachMatchingRule) {
  auto rules = rules_of(kRules);
  ASSERT_TRUE(rules);
  std::vector<std::string> skipped;
  auto d = delivery_records(*rules,
                            {{41, "orders", R"({"op":"UPDATE","new":{"id":7,"note":"n1"}})"},
                             {42, "orders", R"({"op":"INSERT","new":{"id":8}})"}},
                            [&](const std::string& rule, const std::string& msg) {
                              skipped.push_back(rule + ": " + msg);
                            });
  // Event 41: orders (two webhooks) and audit; event 42: only audit (orders wants UPDATE).
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d.events, (std::vector<std::int64_t>{41, 41, 41, 42}));
  EXPECT_EQ(d.rule_names, (std::vector<std::string>{"orders", "orders", "audit", "audit"}));
  EXPECT_EQ(d.positions, (std::vector<int>{1, 2, 0, 0}));
  EXPECT_EQ(d.targets[0], "/orders/7");
  EXPECT_EQ(d.bodies[0], R"({"id": 7})");
  EXPECT_EQ(d.targets[1], "/notes/n1");
  EXPECT_EQ(d.urls[0], "http://127.0.0.1:9");
  EXPECT_EQ(d.ids[0], delivery_id(41, "orders", 1, -1));
  EXPECT_NE(d.ids[0], d.ids[1]);
  EXPECT_TRUE(skipped.empty());
}

TEST(DeliveryRecords, PerStatementRowsAndMissingFields) {
  auto rules = rules_of(kRules);
  ASSERT_TRUE(rules);
  std::vector<std::string> skipped;
  auto d = delivery_records(
      *rules,
      {{50, "orders", R"({"op":"UPDATE","rows":[{"new":{"id":1}},{"new":{"id":2,"note":"x"}}]})"}},
      [&](const std::string& rule, const std::string&) { skipped.push_back(rule); });
  // Row 0 has no note: its notes webhook is skipped and reported; audit gets both rows.
  EXPECT_EQ(skipped, std::vector<std::string>{"orders"});
  EXPECT_EQ(d.targets,
            (std::vector<std::string>{"/orders/1", "/audit", "/orders/2", "/notes/x", "/audit"}));
  EXPECT_EQ(d.ids[0], delivery_id(50, "orders", 1, 0));
  EXPECT_EQ(d.ids[2], delivery_id(50, "orders", 1, 1));
}

TEST(DeliveryRecords, IdsAreStableAndDistinct) {
  EXPECT_EQ(delivery_id(1, "r", 0, -1), delivery_id(1, "r", 0, -1));
  EXPECT_NE(delivery_id(1, "r", 0, -1), delivery_id(1, "r", 0, 0));
  EXPECT_NE(delivery_id(1, "r", 0, -1), delivery_id(1, "s", 0, -1));
  EXPECT_NE(delivery_id(1, "r", 0, -1), delivery_id(2, "r", 0, -1));
  EXPECT_EQ(delivery_id(1, "r", 3, 2).rfind("msg_1_", 0), 0u);
}

}  // namespace
}  // namespace pgfanout::webhook
