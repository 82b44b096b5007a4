// EventHistory: the latest pushed events that came from the WAL source, for clients that
// reconnect (SSE `Last-Event-ID`) or resubscribe (WebSocket `subscribe` with `after`) with the id
// of the last event they saw — a WAL position.
//
// It keeps the last `capacity` events over all topics (hub.history_size), oldest first, in WAL
// order. A resume after position P gets the kept events of its topics after P when the history
// reaches back to P (the oldest kept event is at or before P); otherwise events may be gone and
// the topic is `lost` (the client gets `resync`). After a restart the history starts empty, so an
// id from before it is lost too. An event streamed again (the WAL source's at-least-once replay)
// is not kept twice. Thread-safe: recorded on loop 0, read by sessions of every hub loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pgfanout::hub {

class EventHistory {
 public:
  struct Entry {
    std::uint64_t lsn = 0;
    std::string topic;
    std::shared_ptr<const std::string> frame;  // the `event` frame, with its id
  };
  struct Replay {
    std::vector<Entry> events;      // copies (the frames are shared)
    std::vector<std::string> lost;  // topics that may have missed events
  };

  explicit EventHistory(std::size_t capacity) : capacity_(capacity) {}

  bool enabled() const { return capacity_ > 0; }
  void record(std::uint64_t lsn, std::string_view topic, std::shared_ptr<const std::string> frame);
  // The kept events of `topics` after `after`, oldest first.
  Replay since(std::uint64_t after, const std::vector<std::string>& topics) const;
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<Entry> entries_;
};

}  // namespace pgfanout::hub
