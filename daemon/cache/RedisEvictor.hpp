// RedisEvictor: executes the Redis actions (evict, evict_pattern, publish) for the router.
//
// One TargetQueue (a RedisConnection and a bounded queue) per target. execute() renders the keys
// once and queues them on the action's target; flush() (after each batch of notifications) sends
// what the loop turn coalesced as pipelined multi-key UNLINK (or DEL) commands of at most
// `batch_keys` keys, with at most a fixed number of commands in flight. Each action run reports
// ctx.succeeded() when the replies for all its keys are back, and keeps its ActionContext (so an
// outbox event stays unacknowledged) until then — or, with again_after, until the second eviction
// is back as well.
//
// evict_pattern runs SCAN MATCH (COUNT scan_count) + UNLINK one step at a time per target,
// round-robin between patterns (cache/PatternScans.hpp).
//
// Redis down or slow: work waits in the queue (`queue_limit` keys, publishes and patterns,
// queued or in flight) and is sent when the connection is back; commands whose reply was lost
// are sent again. When the queue is full, new work is dropped, the action fails (an outbox event
// is retried, never acknowledged) and the rule is marked as having a gap; once the target is
// connected and the queue has room again, `on_gap` is called for each such rule (the daemon runs
// the rule's on_gap actions). An error reply fails the actions of that command and is logged with
// its key; READONLY (the server became a replica) puts the command back and reconnects
// (cache/RedisReply.hpp).
//
// Everything runs on the io_context's thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cache/RedisActions.hpp"
#include "cache/RedisJob.hpp"
#include "cache/TargetQueue.hpp"
#include "metrics/Metrics.hpp"
#include "redis/RedisConfig.hpp"
#include "rules/Action.hpp"

namespace pgfanout::redis {

class RedisEvictor final : public rules::ActionExecutor, public TargetQueue::Owner {
 public:
  using GapHandler = std::function<void(const std::string& rule)>;

  RedisEvictor(boost::asio::io_context& io, Metrics& metrics, const RedisConfig& config,
               GapHandler on_gap);
  ~RedisEvictor() override;
  RedisEvictor(const RedisEvictor&) = delete;
  RedisEvictor& operator=(const RedisEvictor&) = delete;

  // Connects every target.
  void start();
  std::vector<std::string_view> kinds() const override;
  // Runs evict, evict_pattern and publish actions (any other kind fails).
  void execute(const rules::Action& action, const rules::Event& event,
               const rules::ActionContext& ctx) override;
  void flush() override;

  // Keys, publishes and patterns queued or in flight, over all targets.
  std::size_t queued() const;
  bool idle() const;
  // For the shutdown drain: queued work plus evictions waiting for again_after.
  std::size_t pending() const override { return queued() + again_.size(); }
  // Whether every target is connected; `detail` names the ones that are not.
  bool healthy(std::string& detail) const;
  bool has_targets() const { return !targets_.empty(); }

 private:
  void finished(TargetQueue& t, Job& job) override;
  void gap(const std::string& rule) override;
  // Resolves the action's target and runs it there; fails ctx when that is not possible.
  template <class A>
  void dispatch(const A& action, const rules::Event& event, const rules::ActionContext& ctx);
  void run(TargetQueue& t, const EvictAction& action, const rules::Event& event,
           const rules::ActionContext& ctx);
  void run(TargetQueue& t, const EvictPatternAction& action, const rules::Event& event,
           const rules::ActionContext& ctx);
  void run(TargetQueue& t, const PublishAction& action, const rules::Event& event,
           const rules::ActionContext& ctx);
  TargetQueue* resolve(const std::string& name);
  void arm_again_timer();
  void on_again_timer();
  void abandon();

  boost::asio::io_context& io_;
  CounterFamily dropped_, gaps_, errors_;
  RedisConfig config_;
  GapHandler on_gap_;
  Owned<Job> jobs_;
  std::vector<std::unique_ptr<TargetQueue>> targets_;
  TargetQueue* default_target_ = nullptr;
  std::multimap<std::chrono::steady_clock::time_point, std::pair<TargetQueue*, Job*>> again_;
  boost::asio::steady_timer again_timer_;
  std::vector<std::string> keys_;  // scratch for rendering
  bool stopping_ = false;
};

}  // namespace pgfanout::redis
