#include "hub/EventHistory.hpp"

#include <algorithm>
#include <unordered_set>

namespace pgfanout::hub {

void EventHistory::record(std::uint64_t lsn, std::string_view topic,
                          std::shared_ptr<const std::string> frame) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mutex_);
  // A transaction streamed again after a failure or a reconnect comes with positions already
  // kept: keep the first copy. (Several events may share a position: the rows of one change
  // pushed to several topics.)
  if (!entries_.empty() && lsn < entries_.back().lsn) return;
  if (!entries_.empty() && lsn == entries_.back().lsn) {
    for (auto it = entries_.rbegin(); it != entries_.rend() && it->lsn == lsn; ++it) {
      if (it->topic == topic && *it->frame == *frame) return;
    }
  }
  entries_.push_back({lsn, std::string(topic), std::move(frame)});
  while (entries_.size() > capacity_) entries_.pop_front();
}

EventHistory::Replay EventHistory::since(std::uint64_t after,
                                         const std::vector<std::string>& topics) const {
  Replay r;
  std::lock_guard lock(mutex_);
  // Complete only when the history reaches back to `after`: nothing between it and the oldest
  // kept event can have been dropped or come before this history began.
  if (entries_.empty() || entries_.front().lsn > after) {
    r.lost = topics;
    return r;
  }
  std::unordered_set<std::string_view> wanted(topics.begin(), topics.end());
  auto first = std::upper_bound(entries_.begin(), entries_.end(), after,
                                [](std::uint64_t v, const Entry& e) { return v < e.lsn; });
  for (auto it = first; it != entries_.end(); ++it) {
    if (wanted.contains(it->topic)) r.events.push_back(*it);
  }
  return r;
}

}  // namespace pgfanout::hub
