// TargetQueue: the work of one Redis target — its connection, its bounded queue of keys,
// publishes and patterns, and the pump that sends that work as pipelined commands.
//
// admit() applies the queue limit (queued and in flight together); when it is full the new work is
// dropped, the action fails and the rule is remembered: once the target is connected and the queue
// is down to half, the target asks its owner to run the rule's on_gap. pump() sends keys (as
// UNLINK/DEL batches of at most `batch_keys`) before publishes, so a publish never overtakes an
// eviction queued before it, and runs one SCAN step at a time (PatternScans), with at most a
// fixed number of commands in flight. Every answered part goes to its Job; the Job's last part
// hands it to the owner. Everything runs on the io_context's thread.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "cache/EvictionQueue.hpp"
#include "cache/PatternScans.hpp"
#include "cache/RedisJob.hpp"
#include "cache/RedisReply.hpp"
#include "metrics/Metrics.hpp"
#include "redis/RedisConfig.hpp"
#include "redis/RedisConnection.hpp"

namespace pgfanout::redis {

class TargetQueue {
 public:
  // What a target reports to the executor that owns it.
  class Owner {
   public:
    virtual ~Owner() = default;
    // Every part of `job` is answered.
    virtual void finished(TargetQueue& target, Job& job) = 0;
    // Work of `rule` was dropped earlier and the target can take work again.
    virtual void gap(const std::string& rule) = 0;
  };
  // The executor's metric families, labelled by target among others.
  struct Families {
    CounterFamily& dropped;
    CounterFamily& gaps;
    CounterFamily& errors;
  };

  TargetQueue(boost::asio::io_context& io, Metrics& metrics, const RedisConfig& config,
              const RedisTarget& spec, Owner& owner, Families families);
  TargetQueue(const TargetQueue&) = delete;
  TargetQueue& operator=(const TargetQueue&) = delete;

  const std::string& name() const { return name_; }
  void start() { conn_->start(); }
  bool ready() const { return conn_->ready(); }
  // Keys, publishes and patterns queued or in flight.
  std::size_t total() const {
    return keys_.size() + publishes_.size() + publishes_in_flight_ + scans_.size();
  }

  // Whether `n` more items fit; when not, fails ctx (as follow-up work of an action already
  // counted when `second_round`) and remembers the rule for on_gap.
  bool admit(std::size_t n, const rules::ActionContext& ctx, bool second_round = false);
  void push_key(std::string key, Job& job, bool unlink) {
    keys_.push(std::move(key), &job, unlink);
  }
  void push_publish(PublishItem item) { publishes_.push_back(std::move(item)); }
  void push_pattern(std::string pattern, Job& job) { scans_.add(std::move(pattern), job); }

  // Sends what the queue holds, as far as the connection and the in-flight bound allow.
  void pump();

  // One part of `job` is answered (`error`: nullptr when it went well).
  void answer(Job& job, const std::string* error) {
    if (job.answer(error)) owner_.finished(*this, job);
  }

  // Shutdown: stops the connection (lost replies put their work back in the queue), then answers
  // every queued part with `why`.
  void stop();
  void abandon(const std::string& why);

 private:
  friend class PatternScans;

  void send_batch();
  void send_publish();
  // The one handling of a reply that did not do the work: an error is counted; a lost reply or
  // READONLY hands the work back through put_back (READONLY also reconnects). True when the work
  // was handed back, to be sent again.
  template <class PutBack>
  bool handed_back(const Reply& reply, PutBack&& put_back);
  void count_error(const std::string& message);
  void update_gauge() { queued_gauge_->set(static_cast<std::int64_t>(total())); }

  boost::asio::io_context& io_;
  const RedisConfig& config_;
  std::string name_;
  Owner& owner_;
  Families families_;
  std::unique_ptr<RedisConnection> conn_;
  EvictionQueue<Job*> keys_;
  std::deque<PublishItem> publishes_;
  std::size_t publishes_in_flight_ = 0;
  PatternScans scans_;
  std::size_t in_flight_ = 0;  // commands
  std::set<std::string> gap_rules_;
  bool full_logged_ = false;
  Gauge* queued_gauge_;
  Counter* keys_sent_;
  Counter* keys_deleted_;
  Counter* keys_failed_;
  Counter* keys_deduplicated_;
  Counter* publishes_sent_;
  std::vector<const char*> argv_;  // scratch for sending
  std::vector<std::size_t> argv_len_;
};

template <class PutBack>
bool TargetQueue::handed_back(const Reply& reply, PutBack&& put_back) {
  if (reply.ok()) return false;
  if (reply.kind != Reply::Kind::Lost) count_error(reply.message);
  if (!reply.resend()) return false;
  put_back();
  if (reply.kind == Reply::Kind::ReadOnly) {
    conn_->reconnect("the server is a read-only replica (" + reply.message + ")");
  }
  return true;
}

}  // namespace pgfanout::redis
