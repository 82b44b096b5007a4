// EvictionQueue: the keys one Redis target still has to delete, cut into pipelined batches.
//
// Keys are pushed as the rules render them, each with an opaque reference to the action run it
// belongs to; take() hands out up to `max` keys of one command (UNLINK or DEL) at a time, oldest
// first. A key that occurs more than once in a batch (several events naming the same row, one
// event evicting a key twice) is sent once: `unique` lists the items to send, in order of first
// appearance, while every item (and so every reference) stays in the batch to be answered. A
// batch stays counted until done() (its reply came back) or requeue() (the connection
// was lost before the reply: the keys go back to the front and are sent again — deleting twice is
// harmless, not deleting is not). size() counts queued and in-flight keys, which is what the
// queue limit bounds; the owner checks has_room() before pushing and decides what to do when
// full. Pure bookkeeping with no I/O, so the batching rules are unit-tested on their own.
// Not thread-safe; used on the event loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace pgfanout::redis {

template <typename Ref>
class EvictionQueue {
 public:
  struct Item {
    std::string key;
    Ref ref;
  };
  struct Batch {
    bool unlink = true;
    std::vector<Item> items;
    std::vector<std::size_t> unique;  // indexes into items: each key once, first appearance first

    std::size_t duplicates() const { return items.size() - unique.size(); }
  };

  explicit EvictionQueue(std::size_t limit) : limit_(limit) {}

  bool has_room(std::size_t n) const { return size_ + n <= limit_; }
  std::size_t size() const { return size_; }  // queued + in flight
  std::size_t pending() const { return unlink_.size() + del_.size(); }
  std::size_t limit() const { return limit_; }

  void push(std::string key, Ref ref, bool unlink) {
    (unlink ? unlink_ : del_).push_back(Item{std::move(key), ref});
    ++size_;
  }

  // Up to `max` keys of one command kind (UNLINK first); empty when nothing is pending.
  Batch take(std::size_t max) {
    Batch b;
    auto& from = !unlink_.empty() ? unlink_ : del_;
    b.unlink = &from == &unlink_;
    std::size_t n = std::min(max, from.size());
    b.items.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      b.items.push_back(std::move(from.front()));
      from.pop_front();
    }
    b.unique.reserve(n);
    std::unordered_set<std::string_view> seen;
    seen.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (seen.insert(b.items[i].key).second) b.unique.push_back(i);
    }
    return b;
  }

  // The batch's reply came back (success or error).
  void done(const Batch& b) { size_ -= b.items.size(); }

  // The batch's reply will never come: send its keys again first.
  void requeue(Batch&& b) {
    auto& to = b.unlink ? unlink_ : del_;
    b.unique.clear();  // worked out again when the keys are taken again
    for (auto it = b.items.rbegin(); it != b.items.rend(); ++it) to.push_front(std::move(*it));
  }

  // Removes every pending key (for shutdown), calling fn(ref) for each.
  template <typename Fn>
  void clear(Fn&& fn) {
    for (auto* q : {&unlink_, &del_}) {
      for (auto& item : *q) fn(item.ref);
      size_ -= q->size();
      q->clear();
    }
  }

 private:
  std::deque<Item> unlink_, del_;
  std::size_t size_ = 0;
  std::size_t limit_;
};

// KeyOrder: whether the keys queued before some point are all answered — what a publish waits for
// on a cluster target, whose keys are answered by several nodes in any order. Each key takes the
// next number when queued (take()); answered(n) marks it; answered_before(mark) holds once every
// key numbered below `mark` (a value of issued() taken earlier) is answered.
class KeyOrder {
 public:
  std::uint64_t take() {
    pending_.push_back(false);
    return base_ + pending_.size() - 1;
  }
  std::uint64_t issued() const { return base_ + pending_.size(); }
  void answered(std::uint64_t n) {
    if (n < base_ || n >= issued()) return;  // cleared meanwhile
    pending_[n - base_] = true;
    while (!pending_.empty() && pending_.front()) {
      pending_.pop_front();
      ++base_;
    }
  }
  bool answered_before(std::uint64_t mark) const { return pending_.empty() || base_ >= mark; }
  // Forgets every key (shutdown).
  void clear() {
    base_ += pending_.size();
    pending_.clear();
  }

 private:
  std::deque<bool> pending_;  // from number base_ on: answered yet?
  std::uint64_t base_ = 0;
};

}  // namespace pgfanout::redis
