// EventSource and EventSink: how the sources of events hand them to the rest of the daemon.
//
// A source reads events from PostgreSQL: NotifyListener (LISTEN/NOTIFY), OutboxReader (the durable
// outbox), and any later one (logical replication). Each hands every event to one EventSink — in
// the daemon, the app's wiring in front of the router — through the same calls: the events of one
// read, the end of that read, and the source's connection state. Adding a source means
// implementing EventSource in its own file and registering it with the daemon; neither the router
// nor the actions change.
//
// Acknowledged sources (the outbox, a replication slot) pass an EventCompletion with each event:
// the sink shares it with every action the event triggers, and the source moves its position past
// the event only once the completion has settled (its last reference dropped) with every action
// successful. Sources without a position (NOTIFY) pass none.
//
// All calls on the io_context's thread. A source never calls its sink after stop().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgfanout::pg {

// One event as received: a NOTIFY, an outbox row, or a decoded change.
struct Notification {
  std::string channel;
  std::string payload;
  int backend_pid = 0;
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
  std::optional<std::int64_t> outbox_id;  // set for events read from pgfanout.outbox
  std::uint64_t outbox_txid = 0;          // and their transaction: the outbox's order is (txid, id)
  std::optional<std::uint64_t> lsn;       // set for events decoded from the WAL
};

// Settles one acknowledged event: when the last reference is dropped, `on_settled` is called with
// whether every action succeeded. Executors hold a reference until their work is done.
class EventCompletion {
 public:
  explicit EventCompletion(std::function<void(bool ok)> on_settled)
      : on_settled_(std::move(on_settled)) {}
  ~EventCompletion() {
    if (on_settled_) on_settled_(!failed_);
  }
  EventCompletion(const EventCompletion&) = delete;
  EventCompletion& operator=(const EventCompletion&) = delete;
  void fail() { failed_ = true; }

 private:
  std::function<void(bool)> on_settled_;
  bool failed_ = false;
};

class EventSource;

class EventSink {
 public:
  virtual ~EventSink() = default;
  // One event. `completion` is null for sources without acknowledgements.
  virtual void on_event(EventSource& from, Notification&& event,
                        std::shared_ptr<EventCompletion> completion) = 0;
  // After the events of one read: executors may send what they coalesced.
  virtual void on_batch_end(EventSource& from) = 0;
  // The source is connected and reading (again). `first`: the first time since start().
  // `missed_events`: events sent while it was away are gone (NOTIFY keeps nothing for absent
  // listeners), so whatever the rules say to do about that (on_reconnect) should run.
  virtual void on_connected(EventSource& from, bool first, bool missed_events) = 0;
  virtual void on_disconnected(EventSource& from, const std::string& why) = 0;
  // Events are known to be lost (a replication slot was invalidated and had to be re-created):
  // the rules' on_gap actions should run.
  virtual void on_events_lost(EventSource& from, const std::string& why) = 0;
  // The source cannot work with this server at all (a hot standby cannot LISTEN); the daemon
  // stops.
  virtual void on_fatal(EventSource& from, const std::string& why) = 0;
};

class EventSource {
 public:
  virtual ~EventSource() = default;
  // "notify", "outbox": for logs and metrics.
  virtual std::string_view name() const = 0;
  // Starts reading the events of `channels` (a source may stay idle while the list is empty).
  virtual void start(std::vector<std::string> channels) = 0;
  // The channels after a reload: only the difference is applied.
  virtual void set_channels(std::vector<std::string> channels) = 0;
  virtual void stop() = 0;
  virtual bool connected() const = 0;
};

}  // namespace pgfanout::pg
