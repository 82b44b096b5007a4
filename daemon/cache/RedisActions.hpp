// The Redis action kinds: evict, evict_pattern and publish.
//
//   - evict: ["user:{id}", "user:name:{old.username}"]   # UNLINK the rendered keys
//     again_after: 500ms                                  # ...and once more after 500 ms
//     unlink: false                                       # DEL instead of UNLINK
//     target: sessions                                    # a named redis target
//   - evict_pattern: "user:{id}:*"                        # SCAN MATCH + UNLINK, values
//   glob-escaped
//   - publish: {channel: "changes:{table}", message: "{payload}"}
//
// Each is parsed once when the config loads (templates included) and is immutable afterwards.
// RedisEvictor executes all three. `where()` keeps the item's position for errors found after
// parsing (an unknown target).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "redis/RedisConfig.hpp"
#include "rules/Action.hpp"
#include "rules/Template.hpp"

namespace pgfanout::config {
class Diagnostics;
}

namespace pgfanout::rules {
class RuleSet;
}

namespace pgfanout::redis {

struct ActionPosition {
  int line = 1, column = 1;
  int target_line = 1, target_column = 1;
  std::string path;
};

class RedisAction : public rules::Action {
 public:
  // Empty: the default target.
  const std::string& target() const { return target_; }
  const ActionPosition& where() const { return where_; }

  // Set by the parser.
  std::string target_;
  ActionPosition where_;
};

class EvictAction final : public RedisAction {
 public:
  static constexpr std::string_view kKind = "evict";
  std::string_view kind() const override { return kKind; }
  std::vector<rules::Template> keys;
  bool unlink = true;
  std::chrono::milliseconds again_after{0};  // 0: evict once
};

class EvictPatternAction final : public RedisAction {
 public:
  static constexpr std::string_view kKind = "evict_pattern";
  std::string_view kind() const override { return kKind; }
  std::vector<rules::Template> patterns;  // rendered with glob escaping of substituted values
};

class PublishAction final : public RedisAction {
 public:
  static constexpr std::string_view kKind = "publish";
  std::string_view kind() const override { return kKind; }
  rules::Template channel;
  rules::Template message;
};

void register_redis_actions(rules::ActionRegistry& registry);

// The keys an evict action names for `event`, appended to `keys`. Templates that depend on the
// side are rendered for both `new` and `old` when the payload carries both (an UPDATE), and both
// keys are kept when they differ. A template whose field is missing is skipped (reported through
// ctx) while the others still render; an explicit {new.x} on an event without `new` (a DELETE),
// or {old.x} without `old` (an INSERT), does not apply and is passed over silently.
void render_evict_keys(const EvictAction& action, const rules::Event& event,
                       const rules::ActionContext& ctx, std::vector<std::string>& keys);

// Reports Redis actions (evict, evict_pattern, publish) whose target does not exist, or that are
// used without any `redis:` section.
void check_redis_targets(const rules::RuleSet& rules, const RedisConfig& redis,
                         config::Diagnostics& diags);

}  // namespace pgfanout::redis
