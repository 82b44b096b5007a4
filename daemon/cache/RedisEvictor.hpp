// RedisEvictor: executes the Redis actions (evict, evict_pattern, publish) for the router.
//
// One RedisConnection and one bounded queue per target. execute() renders the keys once and
// queues them; flush() (after each batch of notifications) sends what the loop turn coalesced as
// pipelined multi-key UNLINK (or DEL) commands of at most `batch_keys` keys, with at most a fixed
// number of commands in flight. Each action run reports ctx.succeeded() when the replies for all
// its keys are back, and keeps its ActionContext (so an outbox event stays unacknowledged) until
// then — or, with again_after, until the second eviction is back as well.
//
// evict_pattern runs SCAN MATCH (COUNT scan_count) + UNLINK one step at a time per target,
// round-robin between patterns, so a large pattern cannot hold up the keys of other events.
// Identical patterns queued before their scan started share it.
//
// Redis down or slow: work waits in the queue (`queue_limit` keys, publishes and patterns,
// queued or in flight) and is sent when the connection is back; commands whose reply was lost
// are sent again. When the queue is full, new work is dropped, the action fails (an outbox event
// is retried, never acknowledged) and the rule is marked as having a gap; once the target is
// connected and the queue has room again, `on_gap` is called for each such rule (the daemon runs
// the rule's on_gap actions). An error reply fails the actions of that command and is logged with
// its key; READONLY (the server became a replica) puts the command back and reconnects.
//
// Everything runs on the io_context's thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "metrics/Metrics.hpp"
#include "redis/RedisConfig.hpp"
#include "rules/Action.hpp"

struct redisReply;

namespace pgfanout {
class Metrics;
}

namespace pgfanout::redis {

class RedisEvictor final : public rules::ActionExecutor {
 public:
  using GapHandler = std::function<void(const std::string& rule)>;

  RedisEvictor(boost::asio::io_context& io, Metrics& metrics, const RedisConfig& config,
               GapHandler on_gap);
  ~RedisEvictor() override;
  RedisEvictor(const RedisEvictor&) = delete;
  RedisEvictor& operator=(const RedisEvictor&) = delete;

  // Connects every target.
  void start();
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
  struct Job;
  struct Target;
  struct ScanJob;
  struct PublishItem;

  Target* resolve(const std::string& name);
  bool admit(Target& t, std::size_t n, const rules::ActionContext& ctx, bool second_round = false);
  void pump(Target& t);
  void send_batch(Target& t);
  void send_publish(Target& t);
  void scan_step(Target& t);
  void finish_scan(Target& t, ScanJob* job);
  void part_done(Target& t, Job* job, const std::string* error);
  void finish(Target& t, Job* job);
  void arm_again_timer();
  void on_again_timer();
  void count_error(Target& t, const std::string& message);
  void update_gauge(Target& t);
  void abandon();

  boost::asio::io_context& io_;
  CounterFamily dropped_, gaps_, errors_;
  RedisConfig config_;
  GapHandler on_gap_;
  std::vector<std::unique_ptr<Target>> targets_;
  Target* default_target_ = nullptr;
  std::multimap<std::chrono::steady_clock::time_point, std::pair<Target*, Job*>> again_;
  boost::asio::steady_timer again_timer_;
  std::vector<std::string> keys_;  // scratch for rendering
  std::vector<const char*> argv_;  // scratch for sending
  std::vector<std::size_t> argv_len_;
  bool stopping_ = false;
};

}  // namespace pgfanout::redis
