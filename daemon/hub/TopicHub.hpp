// TopicHub: which subscribers listen to which topic, and delivery of one message to all of them.
//
// A HubMessage is serialized once by the push action and shared (shared_ptr<const std::string>)
// by every subscriber's send queue. Subscribers are raw pointers: a subscriber removes itself
// (unsubscribe / unsubscribe_all) before it is destroyed. deliver() is called inside publish()'s
// loop and must not subscribe or unsubscribe synchronously (a session that must close posts it).
// Not thread-safe: one per hub loop (HubShard), used on that loop's thread only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pgfanout::hub {

struct HubMessage {
  std::string_view topic;
  std::shared_ptr<const std::string> frame;  // the `event` frame (WebSocket, SSE)
  std::shared_ptr<const std::string> data;   // the bare `data` JSON (Hippie clients)
  std::string id;  // outbox id or WAL position of the event (event_frame), empty for none
  // An outbox event's place in the outbox's delivery order (txid, id); {0, 0} for others.
  std::uint64_t outbox_txid = 0;
  std::int64_t outbox_id = 0;
  // The message as each kind of subscriber writes it, encoded by the first one (Wire.hpp).
  mutable std::array<std::shared_ptr<const std::string>, 4> wire{};
};

class Subscriber {
 public:
  virtual ~Subscriber() = default;
  virtual void deliver(const HubMessage& message) = 0;
  virtual void resync(std::string_view topic) = 0;
};

// A transparent hash for maps keyed by topic, looked up by string_view.
struct TopicHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class TopicHub {
 public:
  // False when `s` already listens to `topic`.
  bool subscribe(std::string_view topic, Subscriber* s);
  bool unsubscribe(std::string_view topic, Subscriber* s);
  bool has_subscribers(std::string_view topic) const;
  // Delivers to every subscriber of the message's topic; returns how many there were.
  std::size_t publish(const HubMessage& message) const;
  // Tells every subscriber of every topic that events may have been missed.
  void resync_all() const;

  std::size_t topic_count() const { return topics_.size(); }
  std::size_t subscription_count() const { return subscriptions_; }

 private:
  std::unordered_map<std::string, std::vector<Subscriber*>, TopicHash, std::equal_to<>> topics_;
  std::size_t subscriptions_ = 0;
};

}  // namespace pgfanout::hub
