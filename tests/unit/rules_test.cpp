// Templates, rule matching and the router, with a recording executor in place of Redis/HTTP.
#include <gtest/gtest.h>

#include <boost/json/value.hpp>

#include "app/ActionKinds.hpp"
#include "app/Config.hpp"
#include "config/YamlReader.hpp"
#include "metrics/Metrics.hpp"
#include "rules/Event.hpp"
#include "rules/LogAction.hpp"
#include "rules/Router.hpp"
#include "rules/RuleSet.hpp"
#include "rules/Template.hpp"

namespace pgfanout::rules {
namespace {

Event event_of(const std::string& payload, const std::string& channel = "ch") {
  return Event(ParsedPayload::parse(channel, payload), nullptr, std::chrono::steady_clock::now());
}

Template tpl(const std::string& text) {
  std::string error;
  auto t = Template::parse(text, error);
  EXPECT_TRUE(t) << error;
  return t ? *t : *Template::parse("", error);
}

std::optional<std::string> render(const std::string& text, const Event& e, Side side = Side::New,
                                  Template::Escape esc = Template::Escape::None) {
  std::string out;
  if (!tpl(text).render(e, out, side, esc)) return std::nullopt;
  return out;
}

const char* kUpdate =
    R"({"v":1,"op":"UPDATE","schema":"public","table":"users","new":{"id":7,"username":"ann","tags":["a"]},"old":{"id":7,"username":"anne"},"txid":"1234"})";

// ---- templates

TEST(Template, BareNamesLookTopLevelThenNewThenOld) {
  auto e = event_of(kUpdate);
  EXPECT_EQ(render("user:{id}", e), "user:7");
  EXPECT_EQ(render("{table}/{op}", e), "users/UPDATE");
  EXPECT_EQ(render("name:{username}", e), "name:ann");
  EXPECT_EQ(render("name:{username}", e, Side::Old), "name:anne");
  EXPECT_EQ(render("{old.username}|{new.username}", e), "anne|ann");
  EXPECT_EQ(render("{new.tags}", e), "[\"a\"]");
}

TEST(Template, HandWrittenPayloads) {
  auto e =
      event_of(R"({"id": 1, "loc": {"type":"Point","coordinates":[1.5,2]}})", "person_updated");
  EXPECT_EQ(render("person:{id}", e), "person:1");
  EXPECT_EQ(render("{loc.type}", e), "Point");
  EXPECT_EQ(render("{channel}:{id}", e), "person_updated:1");
}

TEST(Template, DeleteUsesOld) {
  auto e = event_of(R"({"op":"DELETE","old":{"id":3}})");
  EXPECT_EQ(render("user:{id}", e), "user:3");
}

TEST(Template, MissingOrNullFieldNeverRendersLiterally) {
  auto e = event_of(R"({"id": null, "x": 1})");
  std::string out, missing;
  EXPECT_FALSE(tpl("user:{id}").render(e, out, Side::New, Template::Escape::None, &missing));
  EXPECT_EQ(missing, "id");
  EXPECT_FALSE(render("user:{nope}", e));
  EXPECT_FALSE(render("user:{x.y}", e));
  auto text = event_of("plain text");
  EXPECT_FALSE(render("user:{id}", text));
  EXPECT_EQ(render("{payload}", text), "plain text");
}

TEST(Template, BracesEscapeAndSyntaxErrors) {
  auto e = event_of(R"({"id": 5})");
  EXPECT_EQ(render("{{user:{id}}}:profile", e), "{user:5}:profile");
  std::string error;
  EXPECT_FALSE(Template::parse("{", error));
  EXPECT_FALSE(Template::parse("}", error));
  EXPECT_FALSE(Template::parse("{}", error));
  EXPECT_FALSE(Template::parse("{a..b}", error));
  EXPECT_FALSE(Template::parse("{a{b}", error));
}

TEST(Template, GlobEscapingCannotWidenAPattern) {
  auto e = event_of(R"({"id": "*", "name": "a?[b]\\"})");
  EXPECT_EQ(render("user:{id}:*", e, Side::New, Template::Escape::Glob), "user:\\*:*");
  EXPECT_EQ(render("{name}", e, Side::New, Template::Escape::Glob), "a\\?\\[b\\]\\\\");
}

TEST(Template, SideDependence) {
  EXPECT_TRUE(tpl("user:{id}").depends_on_side());
  EXPECT_FALSE(tpl("user:{new.id}").depends_on_side());
  EXPECT_FALSE(tpl("literal").depends_on_side());
  EXPECT_FALSE(tpl("{channel}").has_fields());
}

TEST(Template, PerStatementRowsLookLikeRowEvents) {
  auto p = ParsedPayload::parse(
      "ch",
      R"({"op":"UPDATE","table":"t","rows":[{"new":{"id":1},"old":{"id":1}},{"new":{"id":2}}]})");
  ASSERT_NE(p->rows(), nullptr);
  ASSERT_EQ(p->rows()->size(), 2u);
  Event second(p, (*p->rows())[1], std::chrono::steady_clock::now());
  std::string out;
  ASSERT_TRUE(tpl("{table}:{id}").render(second, out));
  EXPECT_EQ(out, "t:2");
}

// ---- payload parsing

TEST(ParsedPayload, TextMalformedAndInvalidUtf8) {
  EXPECT_EQ(ParsedPayload::parse("c", "hello")->problem(), PayloadProblem::None);
  EXPECT_EQ(ParsedPayload::parse("c", "")->problem(), PayloadProblem::None);
  EXPECT_EQ(ParsedPayload::parse("c", "{\"id\": ")->problem(), PayloadProblem::MalformedJson);
  EXPECT_EQ(ParsedPayload::parse("c", "{\"id\": \"\xff\xfe\"}")->problem(),
            PayloadProblem::InvalidUtf8);
  EXPECT_EQ(ParsedPayload::parse("c", std::string(100000, '['))->problem(),
            PayloadProblem::MalformedJson);
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));      // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));  // surrogate
  EXPECT_TRUE(valid_utf8("h\xc3\xa9llo \xf0\x9f\x98\x80"));
}

// The value is built in the payload's arena and stays there: nodes copied out to the heap would
// each be allocated and freed again, per payload.
TEST(ParsedPayload, TheValueStaysInThePayloadsArena) {
  auto p = ParsedPayload::parse(
      "c", R"({"op":"UPDATE","new":{"id":1,"tags":["a","b"]},"rows":[{"new":{"id":2}}]})");
  ASSERT_NE(p->json(), nullptr);
  const boost::json::value& v = *p->json();
  EXPECT_TRUE(v.storage().is_deallocate_trivial());
  EXPECT_TRUE(v.at("new").storage().is_deallocate_trivial());
  EXPECT_TRUE(v.at("new").at("tags").storage().is_deallocate_trivial());
  EXPECT_EQ(v.at("new").at("id").as_int64(), 1);
  ASSERT_NE(p->rows(), nullptr);
  EXPECT_TRUE(v.at("rows").storage().is_deallocate_trivial());
}

// ---- rules and router, with a recording executor

class RecordAction final : public Action {
 public:
  explicit RecordAction(Template t) : key(std::move(t)) {}
  static constexpr std::string_view kKind = "record";
  std::string_view kind() const override { return kKind; }
  Template key;
};

class RecordExecutor final : public TypedExecutor<RecordAction> {
 public:
  void run(const RecordAction& a, const Event& e, const ActionContext& ctx) override {
    std::string out;
    if (!render_for_action(a.key, e, ctx, out, false)) return;
    seen.push_back(ctx.rule_name() + "=" + out);
    ctx.succeeded();
  }
  void flush() override { ++flushes; }
  std::vector<std::string> seen;
  int flushes = 0;
};

ActionRegistry test_registry() {
  ActionRegistry r = app::action_kinds();
  r.add("record", [](config::MapReader& item, std::string_view kind) -> std::unique_ptr<Action> {
    std::string error;
    auto t = Template::parse(item.string(kind), error);
    if (!t) return nullptr;
    return std::make_unique<RecordAction>(std::move(*t));
  });
  return r;
}

struct RouterFixture : ::testing::Test {
  void load(const std::string& rules_yaml) {
    registry = test_registry();
    // The schema does not know the test's "record" key; the reader reports it, which is fine
    // here: the registry still parses it. Tests check what was routed.
    auto r = app::load_config_text("postgres: {dsn: host=x}\n" + rules_yaml, "t.yaml",
                                   config::process_env(), &registry);
    config_errors = r.errors.size();
    std::vector<std::string> msgs;
    for (auto& e : r.errors) {
      if (e.message.find("unknown key \"record\"") == std::string::npos)
        msgs.push_back(e.to_string());
    }
    ASSERT_TRUE(msgs.empty()) << ::testing::PrintToString(msgs);
  }
  void route(const std::string& channel, const std::string& payload) {
    Notification n;
    n.channel = channel;
    n.payload = payload;
    router.route(n);
  }
  double metric(const std::string& name, Labels l) { return metrics.value(name, l); }

  ActionRegistry registry;
  size_t config_errors = 0;
  Metrics metrics;
  Router router{metrics};
  RecordExecutor exec;
};

// Rules are built directly (not through YAML) so the test's "record" kind needs no schema row.
std::shared_ptr<RuleSet> rules_of(
    std::vector<std::tuple<std::string, std::string, WhenFilter, std::string>> specs) {
  auto set = std::make_shared<RuleSet>();
  for (auto& [name, channel, when, key] : specs) {
    auto rule = std::make_unique<Rule>();
    rule->name = name;
    rule->channel = channel;
    rule->when = when;
    rule->actions.push_back(std::make_unique<RecordAction>(tpl(key)));
    set->add(std::move(rule));
  }
  return set;
}

TEST_F(RouterFixture, MatchesChannelOpAndFields) {
  WhenFilter updates;
  updates.ops = {"UPDATE"};
  WhenFilter ann;
  ann.fields.push_back({"new.username", {"new", "username"}, {"ann", "bob"}});
  router.add_executor("record", exec);
  router.set_rules(rules_of({{"any", "users", {}, "user:{id}"},
                             {"upd", "users", updates, "upd:{id}"},
                             {"ann", "users", ann, "ann:{id}"},
                             {"other", "orders", {}, "order:{id}"}}));
  route("users", kUpdate);
  route("users", R"({"op":"INSERT","new":{"id":8,"username":"zed"}})");
  EXPECT_EQ(exec.seen,
            (std::vector<std::string>{"any=user:7", "upd=upd:7", "ann=ann:7", "any=user:8"}));
  EXPECT_EQ(metric("pgfanout_notifications_total", {{"channel", "users"}}), 2);
  EXPECT_EQ(metric("pgfanout_actions_total", {{"rule", "upd"}, {"kind", "record"}}), 1);
}

TEST_F(RouterFixture, PerStatementRowsExpand) {
  router.add_executor("record", exec);
  router.set_rules(rules_of({{"r", "t", {}, "k:{id}"}}));
  route("t", R"({"op":"UPDATE","rows":[{"new":{"id":1}},{"new":{"id":2}},{"old":{"id":3}}]})");
  EXPECT_EQ(exec.seen, (std::vector<std::string>{"r=k:1", "r=k:2", "r=k:3"}));
}

TEST_F(RouterFixture, BadInputIsCountedAndNeverCrashes) {
  router.add_executor("record", exec);
  router.set_rules(rules_of({{"r", "c", {}, "k:{id}"}, {"e", "c", {}, "{name}"}}));
  route("c", "{\"id\": ");                 // malformed JSON
  route("c", "{\"id\": \"\xff\"}");        // invalid UTF-8
  route("c", "");                          // empty
  route("c", std::string(7999, 'x'));      // the largest payload NOTIFY can carry, as text
  route("c", R"({"id": 1, "name": ""})");  // renders an empty key for rule e
  route("nobody", R"({"id": 2})");         // a channel no rule names
  std::string big = R"({"id": 9, "pad": ")" + std::string(7960, 'p') + "\"}";
  ASSERT_LT(big.size(), 8000u);
  route("c", big);  // a 7999-byte-class JSON payload
  EXPECT_EQ(exec.seen, (std::vector<std::string>{"r=k:1", "r=k:9"}));
  EXPECT_EQ(
      metric("pgfanout_payload_errors_total", {{"channel", "c"}, {"reason", "malformed_json"}}), 1);
  EXPECT_EQ(metric("pgfanout_payload_errors_total", {{"channel", "c"}, {"reason", "invalid_utf8"}}),
            1);
  EXPECT_EQ(metric("pgfanout_notifications_unrouted_total", {{"channel", "nobody"}}), 1);
  // r: skipped for malformed, utf8, empty, text = 4; e: skipped for all 7 but... (name missing
  // or empty each time)
  EXPECT_EQ(metric("pgfanout_actions_skipped_total", {{"rule", "r"}, {"kind", "record"}}), 4);
  EXPECT_EQ(metric("pgfanout_actions_skipped_total", {{"rule", "e"}, {"kind", "record"}}), 6);
  EXPECT_EQ(metric("pgfanout_notifications_total", {{"channel", "c"}}), 6);
}

TEST_F(RouterFixture, OnReconnectRunsWithChannelOnly) {
  auto set = std::make_shared<RuleSet>();
  auto rule = std::make_unique<Rule>();
  rule->name = "r";
  rule->channel = "users";
  rule->actions.push_back(std::make_unique<RecordAction>(tpl("user:{id}")));
  rule->on_reconnect.push_back(std::make_unique<RecordAction>(tpl("flush:{channel}")));
  rule->on_reconnect.push_back(std::make_unique<RecordAction>(tpl("never:{id}")));
  rule->on_gap.push_back(std::make_unique<RecordAction>(tpl("gap:{channel}")));
  set->add(std::move(rule));
  router.add_executor("record", exec);
  router.set_rules(set);
  router.run_on_reconnect();
  router.run_on_gap("r");
  router.run_on_gap("unknown");
  EXPECT_EQ(exec.seen, (std::vector<std::string>{"r=flush:users", "r=gap:users"}));
  EXPECT_GE(exec.flushes, 2);
}

TEST_F(RouterFixture, MissingExecutorIsReported) {
  auto set = rules_of({{"r", "c", {}, "k"}});
  EXPECT_EQ(router.missing_executors(*set), std::vector<std::string>{"record"});
  router.add_executor("record", exec);
  EXPECT_TRUE(router.missing_executors(*set).empty());
}

TEST_F(RouterFixture, CompletionSettlesAfterAllActions) {
  router.add_executor("record", exec);
  router.set_rules(rules_of({{"a", "c", {}, "k:{id}"}, {"b", "c", {}, "k:{missing}"}}));
  int settled = 0;
  bool ok = false;
  {
    auto completion = std::make_shared<EventCompletion>([&](bool r) {
      ++settled;
      ok = r;
    });
    Notification n{"c", R"({"id":1})"};
    router.route(n, completion);
    EXPECT_EQ(settled, 0);
  }
  EXPECT_EQ(settled, 1);
  EXPECT_TRUE(ok);  // a skip is not a failure
}

TEST_F(RouterFixture, AnExecutorGivenAnotherKindFailsTheActionInsteadOfCasting) {
  // "record" actions handed to the log executor: a wrong registration, not a crash.
  LogExecutor log;
  router.add_executor("record", log);
  router.set_rules(rules_of({{"r", "c", {}, "k:{id}"}}));
  route("c", R"({"id":1})");
  EXPECT_EQ(metric("pgfanout_actions_failed_total", {{"rule", "r"}, {"kind", "record"}}), 1);
}

TEST(Action, AsIsTheCheckedDowncast) {
  RecordAction record(tpl("k"));
  const Action& a = record;
  EXPECT_EQ(a.as<RecordAction>(), &record);
  EXPECT_EQ(a.as<LogAction>(), nullptr);
}

TEST(RuleSet, ForEachMatchExpandsRowsKeepsFileOrderAndScopes) {
  RuleSet rules;
  auto add = [&](const char* name, const char* channel, WhenFilter when, bool durable) {
    auto r = std::make_unique<Rule>();
    r->name = name;
    r->channel = channel;
    r->when = std::move(when);
    r->durable = durable;
    rules.add(std::move(r));
  };
  WhenFilter inserts;
  inserts.ops = {"INSERT"};
  add("first", "t", {}, false);
  add("second", "t", {}, true);
  add("other", "u", {}, false);
  add("inserts", "t", inserts, false);
  const RuleSet* set = &rules;
  auto payload =
      ParsedPayload::parse("t", R"({"op":"UPDATE","rows":[{"new":{"id":1}},{"new":{"id":2}}]})");
  std::vector<std::string> seen;
  auto record = [&](const Rule& rule, const Event& event, int row) {
    std::string id;
    tpl("{id}").render(event, id);
    seen.push_back(rule.name + "/" + std::to_string(row) + "/" + id);
  };
  EXPECT_TRUE(set->for_each_match(payload, {}, std::nullopt, record));
  EXPECT_EQ(seen, (std::vector<std::string>{"first/0/1", "second/0/1", "first/1/2", "second/1/2"}));

  seen.clear();
  EXPECT_TRUE(set->for_each_match(payload, {}, 42, record, RuleScope::DurableOnly));
  EXPECT_EQ(seen, (std::vector<std::string>{"second/0/1", "second/1/2"}));

  seen.clear();
  auto row_level = ParsedPayload::parse("t", R"({"op":"INSERT","new":{"id":9}})");
  EXPECT_TRUE(set->for_each_match(row_level, {}, std::nullopt, record));
  EXPECT_EQ(seen, (std::vector<std::string>{"first/-1/9", "second/-1/9", "inserts/-1/9"}));

  seen.clear();
  EXPECT_FALSE(set->for_each_match(ParsedPayload::parse("nobody", "{}"), {}, std::nullopt, record));
  EXPECT_TRUE(seen.empty());
}

TEST(RuleSetYaml, LogActionForms) {
  auto r = app::load_config_text(
      "postgres: {dsn: host=x}\nrules:\n  - name: a\n    channel: c\n    actions:\n      - log: "
      "\"{id}\"\n"
      "      - log: {message: \"m {op}\", level: warn}\n      - log: {}\n",
      "t.yaml");
  ASSERT_TRUE(r.config);
  const auto& actions = r.config->rules->rules()[0]->actions;
  ASSERT_EQ(actions.size(), 3u);
  auto& second = static_cast<const LogAction&>(*actions[1]);
  EXPECT_EQ(second.message().source(), "m {op}");
  EXPECT_EQ(second.level(), spdlog::level::warn);
  EXPECT_EQ(static_cast<const LogAction&>(*actions[2]).message().source(), "{channel} {payload}");
}

TEST(RuleSetYaml, WhenFields) {
  auto r = app::load_config_text(
      "postgres: {dsn: host=x}\nrules:\n  - name: a\n    channel: c\n    when:\n      table: "
      "users\n"
      "      fields: {new.status: [active, banned], kind: 3}\n    actions: [{log: x}]\n",
      "t.yaml");
  ASSERT_TRUE(r.config);
  const auto& when = r.config->rules->rules()[0]->when;
  EXPECT_TRUE(when.matches(event_of(R"({"table":"users","new":{"status":"banned","kind":3}})")));
  EXPECT_FALSE(when.matches(event_of(R"({"table":"users","new":{"status":"gone","kind":3}})")));
  EXPECT_FALSE(when.matches(event_of(R"({"table":"orders","new":{"status":"active","kind":3}})")));
  EXPECT_FALSE(when.matches(event_of(R"({"table":"users","new":{"status":"active"}})")));
}

}  // namespace
}  // namespace pgfanout::rules
