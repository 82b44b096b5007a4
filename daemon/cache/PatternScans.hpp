// PatternScans: the evict_pattern work of one Redis target — SCAN MATCH (COUNT scan_count) and
// UNLINK of what each step finds, one step at a time, round-robin between patterns, so a large
// pattern cannot hold up the keys of other events. Identical patterns queued before their scan
// started share it. A scan whose UNLINK reply was lost starts again from the beginning once its
// current pass is done; its Jobs are answered when the scan is complete (or failed). A cluster
// target's pass scans each primary in turn (the cursor is per node), and the keys a step finds
// are unlinked on that node one slot per command; a node that stopped being a primary during the
// pass, a lost reply or a redirect makes the scan run another pass once this one is done.
#pragma once

#include <cstddef>
#include <deque>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/RedisJob.hpp"
#include "redis/RedisConnection.hpp"

struct redisReply;

namespace pgfanout::redis {

class TargetQueue;

class PatternScans {
 public:
  // Queues `pattern` for `job` (shared with an identical pattern not started yet).
  void add(std::string pattern, Job& job);
  // Scans alive, whatever their state.
  std::size_t size() const { return scans_.size(); }
  // Whether a step can be sent now (none in flight, one waiting).
  bool can_step() const { return !in_flight_ && !waiting_.empty(); }
  // Sends the next scan's next step on `target`'s connection to the node being scanned (nothing
  // when that node is not connected now).
  void step(TargetQueue& target);
  // Shutdown: every Job waiting for a scan, once per pattern it waits for; drops the scans.
  template <class Fn>
  void abandon(Fn&& fn) {
    for (Scan* s : waiting_) {
      for (Job* j : s->waiting) fn(*j);
      scans_.release(*s);
    }
    waiting_.clear();
  }

 private:
  struct Scan {
    Scan(std::string p, Job& job) : pattern(std::move(p)), waiting{&job} {}
    std::string pattern;
    std::vector<Job*> waiting;
    std::string cursor = "0";
    std::vector<std::string> nodes;  // this pass's primaries; empty before the pass starts
    std::size_t node = 0;            // the one being scanned
    bool started = false;
    bool scan_done = false;
    bool restart = false;  // an UNLINK reply was lost: scan again from the start
    std::size_t unlinks_in_flight = 0;
    std::string error;
    std::list<Scan>::iterator owner_position;
  };

  // The scan's current node is done (or gone): on to the next one, or the pass is over.
  void next_node(Scan& scan);
  void unlink_found(TargetQueue& target, RedisConnection& conn, Scan& scan,
                    const redisReply* found);
  void finish(TargetQueue& target, Scan& scan);

  Owned<Scan> scans_;
  std::deque<Scan*> waiting_;                         // waiting for their next step
  std::unordered_map<std::string, Scan*> unstarted_;  // for sharing identical patterns
  bool in_flight_ = false;
};

}  // namespace pgfanout::redis
