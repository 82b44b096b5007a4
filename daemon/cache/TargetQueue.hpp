// TargetQueue: the work of one Redis target — its connections (redis/RedisNodes: one server, or
// one connection per primary of a Redis Cluster), its bounded queue of keys, publishes and
// patterns, and the pump that sends that work as pipelined commands.
//
// admit() applies the queue limit (queued and in flight together); when it is full the new work is
// dropped, the action fails and the rule is remembered: once the target is connected and the queue
// is down to half, the target asks its owner to run the rule's on_gap. pump() sends keys (as
// UNLINK/DEL batches of at most `batch_keys`) before publishes, so a publish never overtakes an
// eviction queued before it, and runs one SCAN step at a time (PatternScans), with at most a
// fixed number of commands in flight. Every answered part goes to its Job; the Job's last part
// hands it to the owner. Everything runs on the io_context's thread.
//
// A cluster target cuts each batch by hash slot: one UNLINK/DEL per slot, sent to the slot's
// primary (so no command spans slots). MOVED puts the keys back and points the slot at its new
// primary; ASK sends ASKING and the same command to the node named; TRYAGAIN and CLUSTERDOWN put
// the work back and pause the target briefly. Keys of a slot whose primary is not connected wait
// in the queue (with the same queue_limit). A publish goes to any connected primary once every
// key queued before it is answered (KeyOrder; the cluster bus carries it to every node's
// subscribers), so it never overtakes an eviction queued before it; evict_pattern scans every
// primary in turn.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cache/EvictionQueue.hpp"
#include "cache/PatternScans.hpp"
#include "cache/RedisJob.hpp"
#include "cache/RedisReply.hpp"
#include "metrics/Metrics.hpp"
#include "redis/RedisConfig.hpp"
#include "redis/RedisConnection.hpp"
#include "redis/RedisNodes.hpp"

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
  void start() { nodes_.start(); }
  // Health: connected (a cluster: every slot's primary connected); problem() says what is not.
  bool ready() const { return nodes_.ready(); }
  std::string problem() const { return nodes_.problem(); }
  // Keys, publishes and patterns queued or in flight.
  std::size_t total() const {
    return keys_.size() + publishes_.size() + publishes_in_flight_ + scans_.size();
  }

  // Whether `n` more items fit; when not, fails ctx (as follow-up work of an action already
  // counted when `second_round`) and remembers the rule for on_gap.
  bool admit(std::size_t n, const rules::ActionContext& ctx, bool second_round = false);
  void push_key(std::string key, Job& job, bool unlink) {
    keys_.push(std::move(key), KeyRef{&job, order_.take()}, unlink);
  }
  void push_publish(PublishItem item) {
    item.after_keys = order_.issued();
    publishes_.push_back(std::move(item));
  }
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

  using Batch = EvictionQueue<KeyRef>::Batch;
  // Each returns false when it could not send (no connected node for the work): pump stops.
  bool send_batch();
  bool send_publish();
  void send_keys(RedisConnection& conn, std::shared_ptr<Batch> batch, bool asking);
  bool follow_ask(const Reply& reply, const std::shared_ptr<Batch>& batch);
  // Indexes 0..n-1 grouped by the hash slot of key(i), groups in order of first appearance; a
  // single server has one group (slot 0).
  template <class Key>
  std::vector<std::pair<std::uint16_t, std::vector<std::size_t>>> slot_groups(std::size_t n,
                                                                              Key&& key) const;
  // The one handling of a reply that did not do the work: an error is counted; a lost reply,
  // READONLY or a cluster redirect hands the work back through put_back. True when the work was
  // handed back, to be sent again.
  template <class PutBack>
  bool handed_back(const Reply& reply, RedisConnection& conn, PutBack&& put_back);
  // After work was handed back: READONLY makes the nodes look again, MOVED updates the slot map,
  // TRYAGAIN/CLUSTERDOWN (and an ASK to a node not connected yet) pause the target; a pump
  // follows when nothing else would start one.
  void handed_back_after(const Reply& reply, RedisConnection& conn);
  void pump_soon();
  // Whether the keys queued before the first publish are all answered (it may go before the
  // keys still queued, all queued after it).
  bool publish_due() const {
    return !publishes_.empty() && order_.answered_before(publishes_.front().after_keys);
  }
  // Answers every key of a batch (`error`: nullptr when it went well).
  void answer_keys(const Batch& batch, const std::string* error) {
    for (const auto& item : batch.items) {
      order_.answered(item.ref.order);
      answer(*item.ref.job, error);
    }
  }
  void count_error(const std::string& message);
  void update_gauge() { queued_gauge_->set(static_cast<std::int64_t>(total())); }

  boost::asio::io_context& io_;
  const RedisConfig& config_;
  std::string name_;
  Owner& owner_;
  Families families_;
  RedisNodes nodes_;
  EvictionQueue<KeyRef> keys_;
  KeyOrder order_;
  std::deque<PublishItem> publishes_;
  std::size_t publishes_in_flight_ = 0;
  PatternScans scans_;
  std::size_t in_flight_ = 0;  // commands
  std::set<std::string> gap_rules_;
  bool full_logged_ = false;
  bool pump_posted_ = false;
  bool held_ = false;  // paused after TRYAGAIN / CLUSTERDOWN
  boost::asio::steady_timer hold_timer_;
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
bool TargetQueue::handed_back(const Reply& reply, RedisConnection& conn, PutBack&& put_back) {
  using enum Reply::Kind;
  if (reply.ok()) return false;
  if (reply.kind != Lost && reply.kind != Moved && reply.kind != Ask) count_error(reply.message);
  if (!reply.resend()) return false;
  put_back();
  handed_back_after(reply, conn);
  return true;
}

template <class Key>
std::vector<std::pair<std::uint16_t, std::vector<std::size_t>>> TargetQueue::slot_groups(
    std::size_t n, Key&& key) const {
  std::vector<std::pair<std::uint16_t, std::vector<std::size_t>>> groups;
  std::unordered_map<std::uint16_t, std::size_t> where;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t slot = nodes_.cluster() ? key_slot(key(i)) : 0;
    auto [it, added] = where.try_emplace(slot, groups.size());
    if (added) groups.emplace_back(slot, std::vector<std::size_t>{});
    groups[it->second].second.push_back(i);
  }
  return groups;
}

}  // namespace pgfanout::redis
