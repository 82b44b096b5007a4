// Rendering of evict keys (old/new sides, skips) and of glob-escaped patterns.
#include <gtest/gtest.h>

#include "app/Config.hpp"
#include "cache/RedisActions.hpp"
#include "metrics/Metrics.hpp"
#include "rules/RuleSet.hpp"

namespace pgfanout::redis {
namespace {

class EvictKeys : public ::testing::Test {
 protected:
  const EvictAction& parse(const std::string& evict) {
    auto r = app::load_config_text(
        "postgres: {dsn: \"host=x\"}\nredis: {url: redis://h}\nrules:\n  - name: r\n    channel: "
        "c\n"
        "    actions:\n      - evict: " +
            evict + "\n",
        "t.yaml");
    EXPECT_TRUE(r.config);
    config = r.config;
    return static_cast<const EvictAction&>(*config->rules->rules()[0]->actions[0]);
  }
  std::vector<std::string> keys(const EvictAction& a, const std::string& payload) {
    auto parsed = rules::ParsedPayload::parse("c", payload);
    rules::Event event(parsed, nullptr, {});
    rules::ActionContext ctx;
    ctx.stats.skipped = &skipped;
    std::vector<std::string> out;
    render_evict_keys(a, event, ctx, out);
    return out;
  }
  std::shared_ptr<const app::Config> config;
  Counter skipped;
};

using Keys = std::vector<std::string>;

TEST_F(EvictKeys, UpdateRendersSideDependentTemplatesForBothSides) {
  const auto& a = parse(R"(["user:{id}", "name:{username}", "email:{new.email}"])");
  EXPECT_EQ(keys(a, R"({"op":"UPDATE","new":{"id":7,"username":"ann","email":"a@x"},)"
                    R"("old":{"id":7,"username":"anne","email":"old@x"}})"),
            (Keys{"user:7", "name:ann", "name:anne", "email:a@x"}));
  EXPECT_EQ(skipped.value(), 0u);
}

TEST_F(EvictKeys, InsertAndDeleteRenderTheirOneSide) {
  const auto& a = parse(R"(["user:{id}", "name:{new.username}", "name:{old.username}"])");
  EXPECT_EQ(keys(a, R"({"op":"INSERT","new":{"id":1,"username":"a"}})"),
            (Keys{"user:1", "name:a"}));
  EXPECT_EQ(keys(a, R"({"op":"DELETE","old":{"id":2,"username":"b"}})"),
            (Keys{"user:2", "name:b"}));
  EXPECT_EQ(skipped.value(), 0u);
}

TEST_F(EvictKeys, HandWrittenPayloadsUseTopLevelFields) {
  const auto& a = parse(R"("user:{id}:{loc.city}")");
  EXPECT_EQ(keys(a, R"({"id": 5, "loc": {"city": "Oslo"}})"), (Keys{"user:5:Oslo"}));
}

TEST_F(EvictKeys, MissingOrNullFieldSkipsThatTemplateOnly) {
  const auto& a = parse(R"(["user:{id}", "name:{username}"])");
  EXPECT_EQ(keys(a, R"({"id": 5})"), (Keys{"user:5"}));
  EXPECT_EQ(skipped.value(), 1u);
  EXPECT_EQ(keys(a, R"({"id": null, "username": null})"), Keys{});
  EXPECT_EQ(skipped.value(), 3u);
  EXPECT_EQ(keys(a, "not json"), Keys{});
  EXPECT_EQ(skipped.value(), 5u);
}

TEST_F(EvictKeys, EmptyRenderedKeyIsSkipped) {
  const auto& a = parse(R"("{name}")");
  EXPECT_EQ(keys(a, R"({"name": ""})"), Keys{});
  EXPECT_EQ(skipped.value(), 1u);
}

TEST_F(EvictKeys, UnchangedSideDependentKeyIsNotRepeated) {
  const auto& a = parse(R"("user:{id}")");
  EXPECT_EQ(keys(a, R"({"op":"UPDATE","new":{"id":7},"old":{"id":7}})"), (Keys{"user:7"}));
}

TEST(GlobEscape, PayloadValuesCannotWidenAPattern) {
  std::string error;
  auto tpl = rules::Template::parse("user:{id}:*", error);
  ASSERT_TRUE(tpl);
  const std::pair<const char*, const char*> cases[] = {
      {R"({"id": "*"})", R"(user:\*:*)"},
      {R"({"id": "a?b"})", R"(user:a\?b:*)"},
      {R"({"id": "[0-9]"})", R"(user:\[0-9\]:*)"},
      {R"({"id": "back\\slash"})", R"(user:back\\slash:*)"},
      {R"({"id": 42})", "user:42:*"},
  };
  for (const auto& [payload, expected] : cases) {
    rules::Event event(rules::ParsedPayload::parse("c", payload), nullptr, {});
    std::string out;
    ASSERT_TRUE(tpl->render(event, out, rules::Side::New, rules::Template::Escape::Glob));
    EXPECT_EQ(out, expected) << payload;
  }
}

}  // namespace
}  // namespace pgfanout::redis
