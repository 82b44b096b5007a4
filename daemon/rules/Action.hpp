// Actions and their executors: the one interface through which the router hands work out.
//
// An Action is the parsed, validated form of one item of a rule's `actions:` (or `on_reconnect:`,
// `on_gap:`) list: immutable, built when the config loads. Each kind (log, evict, push, webhook...)
// registers a parser in the ActionRegistry and, at run time, an ActionExecutor with the Router.
// The router calls ActionExecutor::execute() on the event loop for every matching event; an
// executor may finish the work later (Redis, HTTP) and reports the outcome through the
// ActionContext it was given, which it may copy and keep. After each batch of notifications the
// router calls flush() so that executors can send what they coalesced.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/ConfigSchema.hpp"
#include "rules/Event.hpp"

namespace pgfanout {
class Counter;
class Histogram;
class RateLimitedLog;
}  // namespace pgfanout

namespace pgfanout::config {
class MapReader;
}

namespace pgfanout::rules {

struct Rule;
class RuleSet;

class Action {
 public:
  virtual ~Action() = default;
  // The kind's YAML key ("evict", "push", ...), for metrics and messages. Each kind declares it
  // once, as `static constexpr std::string_view kKind`, and returns that very constant.
  virtual std::string_view kind() const = 0;

  // This action as kind T, or nullptr when it is another kind: the one checked downcast, used
  // instead of comparing kind() strings and casting.
  template <class T>
  const T* as() const {
    auto k = kind();
    return k.data() == T::kKind.data() && k.size() == T::kKind.size() ? static_cast<const T*>(this)
                                                                      : nullptr;
  }

  // Index of this action in its RuleSet (set by the RuleSet), for per-action metrics.
  std::size_t index() const { return index_; }

 private:
  friend class RuleSet;
  std::size_t index_ = 0;
};

// Settles one acknowledged event (pg/EventSource.hpp): executors hold a reference until their
// work is done.
using EventCompletion = pg::EventCompletion;

struct ActionStats {
  Counter* run = nullptr;
  Counter* failed = nullptr;
  Counter* skipped = nullptr;
  Histogram* latency = nullptr;
};

// What an executor needs to report the outcome of one action for one event. Copyable.
struct ActionContext {
  const Rule* rule = nullptr;            // valid while `rules` is held
  std::shared_ptr<const RuleSet> rules;  // keeps `rule` alive across a reload
  ActionStats stats;
  RateLimitedLog* log = nullptr;
  std::shared_ptr<EventCompletion> completion;  // null unless the event must be acknowledged
  std::chrono::steady_clock::time_point received{};

  const std::string& rule_name() const;
  // The action's work is done: counts it and records notification-to-done latency.
  void succeeded() const;
  // The action failed: counts it, fails the completion (the outbox event is retried), logs
  // (rate-limited per rule).
  void failed(std::string_view why) const;
  // Follow-up work of an action already counted as succeeded failed (the second eviction of
  // `again_after`): fails the completion and logs, without counting the action a second time.
  void failed_after_success(std::string_view why) const;
  // The action does not apply to this event (a template field is missing, a key is empty):
  // counts it and logs (rate-limited per rule). Not a failure: the event is still acknowledged.
  void skipped(std::string_view why) const;
};

class ActionExecutor {
 public:
  virtual ~ActionExecutor() = default;
  virtual void execute(const Action& action, const Event& event, const ActionContext& ctx) = 0;
  // The action kinds this executor runs (their kKind constants): Router::add registers it under
  // each, so a kind added to an executor needs no change where the daemon is put together.
  virtual std::vector<std::string_view> kinds() const { return {}; }
  virtual void flush() {}
  // Actions accepted by execute() whose outcome is not reported yet (queued or in flight).
  // At shutdown the daemon waits (up to shutdown.drain_timeout) until every executor reports 0.
  virtual std::size_t pending() const { return 0; }
};

// An executor of one action kind T: run() receives the action as T. A mismatch (an executor
// registered under another kind's name) fails the action instead of casting blindly.
template <class T>
class TypedExecutor : public ActionExecutor {
 public:
  void execute(const Action& action, const Event& event, const ActionContext& ctx) final {
    if (const T* typed = action.as<T>()) {
      run(*typed, event, ctx);
    } else {
      ctx.failed("the executor of \"" + std::string(T::kKind) + "\" was given a \"" +
                 std::string(action.kind()) + "\" action");
    }
  }
  virtual void run(const T& action, const Event& event, const ActionContext& ctx) = 0;
  std::vector<std::string_view> kinds() const override { return {T::kKind}; }
};

// Parses the action item `item` (a mapping with the kind's key `kind` and its modifiers).
// Reports problems through the reader and returns nullptr when the action is invalid.
using ActionParser =
    std::function<std::unique_ptr<Action>(config::MapReader& item, std::string_view kind)>;

class ActionRegistry {
 public:
  void add(std::string kind, ActionParser parser);
  // The schema rows of the kinds' keys ("rules[].actions[].evict", ...), declared next to their
  // parsers and registered with them.
  void add_keys(std::span<const config::KeySpec> keys);
  const ActionParser* find(std::string_view kind) const;
  const std::vector<std::string>& kinds() const { return kinds_; }
  std::span<const config::KeySpec> keys() const { return keys_; }

 private:
  std::vector<std::string> kinds_;
  std::vector<ActionParser> parsers_;
  std::vector<config::KeySpec> keys_;
};

// Renders `tpl` into `out` for an action, reporting a missing field or (unless `allow_empty`)
// an empty result as a skip. Returns false when the action must be skipped for this event.
class Template;
bool render_for_action(const Template& tpl, const Event& event, const ActionContext& ctx,
                       std::string& out, bool allow_empty, Side side = Side::New,
                       bool glob_escape = false);

}  // namespace pgfanout::rules
