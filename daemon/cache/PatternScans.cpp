#include "cache/PatternScans.hpp"

#include <hiredis/hiredis.h>

#include "cache/TargetQueue.hpp"

namespace pgfanout::redis {

void PatternScans::add(std::string pattern, Job& job) {
  auto it = unstarted_.find(pattern);
  if (it != unstarted_.end()) {
    it->second->waiting.push_back(&job);
    return;
  }
  Scan& scan = scans_.make(pattern, job);
  unstarted_.emplace(std::move(pattern), &scan);
  waiting_.push_back(&scan);
}

void PatternScans::step(TargetQueue& target) {
  Scan* scan = waiting_.front();
  if (scan->nodes.empty()) {
    scan->nodes = target.nodes_.primaries();
    scan->node = 0;
    if (scan->nodes.empty()) return;  // no slot map yet
  }
  RedisConnection* conn = target.nodes_.primary(scan->nodes[scan->node]);
  if (conn == nullptr) {
    scan->restart = true;  // no longer a primary: its keys are elsewhere now
    next_node(*scan);
    waiting_.pop_front();
    if (scan->scan_done) {
      finish(target, *scan);
    } else {
      waiting_.push_back(scan);
    }
    return;
  }
  if (!conn->ready()) {  // tried again when the node is back; the other patterns go on meanwhile
    waiting_.pop_front();
    waiting_.push_back(scan);
    return;
  }
  waiting_.pop_front();
  if (!scan->started) {
    scan->started = true;
    unstarted_.erase(scan->pattern);
  }
  std::string count = std::to_string(target.config_.scan_count);
  const char* argv[] = {"SCAN",  scan->cursor.data(), "MATCH", scan->pattern.data(),
                        "COUNT", count.data()};
  std::size_t lens[] = {4, scan->cursor.size(), 5, scan->pattern.size(), 5, count.size()};
  ++target.in_flight_;
  in_flight_ = true;
  TargetQueue* tp = &target;
  conn->command(6, argv, lens, [this, tp, scan, conn](redisReply* r) {
    TargetQueue& t = *tp;
    --t.in_flight_;
    in_flight_ = false;
    Reply reply = classify_scan(r, t.nodes_.cluster());
    if (t.handed_back(reply, *conn, [&] {
          if (reply.kind == Reply::Kind::Lost) scan->cursor = "0";  // the server may have restarted
          waiting_.push_front(scan);
        })) {
      return;
    }
    if (!reply.ok()) {
      scan->error =
          "SCAN MATCH " + scan->pattern + " on Redis target " + t.name_ + ": " + reply.message;
      scan->scan_done = true;
      finish(t, *scan);
      t.pump();
      return;
    }
    conn->note_success();
    scan->cursor.assign(r->element[0]->str, r->element[0]->len);
    if (r->element[1]->elements > 0) unlink_found(t, *conn, *scan, r->element[1]);
    if (scan->cursor == "0") next_node(*scan);
    if (scan->scan_done) {
      finish(t, *scan);
    } else {
      waiting_.push_back(scan);  // round-robin with the other patterns
    }
    t.pump();
  });
}

void PatternScans::next_node(Scan& scan) {
  scan.cursor = "0";
  if (++scan.node >= scan.nodes.size()) scan.scan_done = true;
}

void PatternScans::unlink_found(TargetQueue& target, RedisConnection& conn, Scan& scan,
                                const redisReply* found) {
  auto groups = target.slot_groups(found->elements, [&](std::size_t i) {
    return std::string_view(found->element[i]->str, found->element[i]->len);
  });
  for (const auto& [slot, indexes] : groups) {
    auto& argv = target.argv_;
    auto& argv_len = target.argv_len_;
    argv.clear();
    argv_len.clear();
    argv.push_back("UNLINK");
    argv_len.push_back(6);
    for (std::size_t i : indexes) {
      argv.push_back(found->element[i]->str);
      argv_len.push_back(found->element[i]->len);
    }
    ++target.in_flight_;
    ++scan.unlinks_in_flight;
    std::size_t n = indexes.size();
    TargetQueue* tp = &target;
    Scan* sp = &scan;
    RedisConnection* cp = &conn;
    conn.command(argv.size(), argv.data(), argv_len.data(), [this, tp, sp, cp, n](redisReply* r) {
      TargetQueue& t = *tp;
      Scan& s = *sp;
      --t.in_flight_;
      --s.unlinks_in_flight;
      Reply reply = classify(r, t.nodes_.cluster());
      if (t.handed_back(reply, *cp, [&] { s.restart = true; })) {
        // sent again when this pass of the scan is done
      } else if (!reply.ok()) {
        if (s.error.empty()) {
          s.error = "UNLINK for pattern " + s.pattern + " on Redis target " + t.name_ + ": " +
                    reply.message;
        }
      } else {
        t.keys_sent_->inc(n);
        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
          t.keys_deleted_->inc(static_cast<std::uint64_t>(r->integer));
        }
      }
      finish(t, s);
      t.pump();
    });
  }
}

void PatternScans::finish(TargetQueue& target, Scan& scan) {
  if (!scan.scan_done || scan.unlinks_in_flight > 0) return;
  if (scan.restart && scan.error.empty()) {
    scan.restart = false;
    scan.scan_done = false;
    scan.cursor = "0";
    scan.nodes.clear();
    waiting_.push_front(&scan);
    return;
  }
  std::vector<Job*> jobs = std::move(scan.waiting);
  std::string error = std::move(scan.error);
  scans_.release(scan);
  for (Job* job : jobs) target.answer(*job, error.empty() ? nullptr : &error);
}

}  // namespace pgfanout::redis
