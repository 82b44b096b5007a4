// The work items of the Redis executor, and who owns them.
//
// A Job is one action run for one event (an evict's keys, an evict_pattern's patterns, a
// publish): it is answered part by part and settles its ActionContext when the last part is back.
// Every Job alive is owned by the executor's Owned<Job>; the queues, scans and again_after list
// hold plain pointers to it, and the owner releases it once it is settled (or, at shutdown, when
// the owner goes) — no Job is deleted by hand.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <list>
#include <string>
#include <utility>
#include <vector>

#include "rules/Action.hpp"

namespace pgfanout::redis {

// Owns every T it made, until release(): the items stay at their address, so pointers to them can
// be queued. T has a member `typename std::list<T>::iterator owner_position`.
template <class T>
class Owned {
 public:
  template <class... Args>
  T& make(Args&&... args) {
    items_.emplace_back(std::forward<Args>(args)...);
    auto it = std::prev(items_.end());
    it->owner_position = it;
    return *it;
  }
  void release(T& item) { items_.erase(item.owner_position); }
  std::size_t size() const { return items_.size(); }

 private:
  std::list<T> items_;
};

struct Job {
  Job(rules::ActionContext c, std::size_t parts, bool unlink_keys = true,
      std::chrono::milliseconds again = std::chrono::milliseconds{0})
      : ctx(std::move(c)), outstanding(parts), unlink(unlink_keys), again_after(again) {}

  // One part is answered (`why`: its error, nullptr when it went well). True for the last part.
  bool answer(const std::string* why) {
    if (why != nullptr && error.empty()) error = *why;
    return --outstanding == 0;
  }

  rules::ActionContext ctx;
  std::size_t outstanding = 0;
  std::string error;  // the first error; empty while all went well
  bool unlink = true;
  std::chrono::milliseconds again_after{0};
  bool second_round = false;
  std::vector<std::string> again_keys;  // kept only when again_after is set
  std::list<Job>::iterator owner_position;
};

struct PublishItem {
  std::string channel;
  std::string message;
  Job* job = nullptr;
  std::uint64_t after_keys = 0;  // a cluster target sends it once the keys before are answered
};

// A queued key's reference: its Job and its number in the target's KeyOrder.
struct KeyRef {
  Job* job = nullptr;
  std::uint64_t order = 0;
};

}  // namespace pgfanout::redis
