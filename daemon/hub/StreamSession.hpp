// StreamSession: a one-way HTTP stream of a hub's events — Server-Sent Events (`/events`) or
// Web::Hippie's multipart/mixed stream (`/_hippie/mxhr/<channel>`).
//
// run() writes the response head, subscribes to the topics, sends on_subscribe rows and (SSE
// with Last-Event-ID) the durable events missed since that id, then live events. Live events
// that arrive meanwhile are kept back so the order holds. Writes go through a QueuedStream like
// WebSocketSession's: events encoded once for all subscribers, coalesced into gather writes, the
// queue bounded in bytes (a slow client is closed and counted). An idle stream gets a heartbeat
// (an SSE comment, a Hippie ping). A read is kept pending only to notice the client going away.
// Lives by shared_ptr; every handler runs on its hub loop's thread (HubLoops.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "hub/HubState.hpp"
#include "hub/QueuedStream.hpp"

namespace pgfanout::hub {

class StreamSession : public std::enable_shared_from_this<StreamSession>,
                      public Subscriber,
                      public HubConnection {
 public:
  enum class Format { Sse, Multipart };

  // Runs on `shard`'s loop, the one of `stream`'s socket.
  StreamSession(std::shared_ptr<HubState> hub, HubShard& shard, boost::beast::tcp_stream&& stream,
                Format format);
  ~StreamSession();

  // `entries[i]` is the topics: entry that allowed `topics[i]`. `resume_unknown`: the client
  // asked to resume from an id that is not one (it gets `resync` for every topic).
  // `last_event_id` resumes from the outbox, `last_lsn` (a WAL position) from the hub's history.
  void run(std::vector<std::string> topics, std::vector<std::size_t> entries,
           std::optional<Identity> identity, std::optional<std::int64_t> last_event_id,
           bool resume_unknown = false, std::optional<std::uint64_t> last_lsn = {});

  void deliver(const HubMessage& message) override;
  void resync(std::string_view topic) override;
  void shutdown() override;
  void recheck() override;

 private:
  void start_subscriptions();
  void release_held();
  // `bytes`: as they go on the wire.
  void send(std::shared_ptr<const std::string> bytes);
  // `body`: a protocol frame (SSE) or the bare data (multipart); `id` >= 0: SSE `id:` line.
  void send_event(std::string_view body, std::string_view id);
  bool over_limit(std::size_t more);
  // Sends one event of a resume (Last-Event-ID). A resume larger than the send queue goes out in
  // parts: when the next event would not fit, the stream ends once the queue has been written
  // (counted as dropped, reason "resume"), and the client resumes from the last event it got.
  // False: the stream is ending; send nothing more.
  bool send_replayed(std::string_view body, std::string_view id);
  void drop();
  // Ends the stream once what is queued has had a moment to go out.
  void end_soon();
  void watch_close();
  void heartbeat();
  void finish();

  QueuedStream stream_;
  std::shared_ptr<HubState> hub_;
  HubShard* shard_;
  Format format_;
  std::vector<std::string> topics_;
  std::vector<std::size_t> entries_;
  std::optional<Identity> identity_;
  std::optional<std::int64_t> last_event_id_;
  std::optional<std::uint64_t> last_lsn_;
  std::size_t held_bytes_ = 0;
  bool resume_unknown_ = false;
  int pending_ = 0;  // on_subscribe / replay queries still running; live events are held
  struct Held {
    OutboxPosition position;                   // of an outbox event, {0, 0} for others
    std::shared_ptr<const std::string> bytes;  // encoded
  };
  std::vector<Held> held_;
  // After a resume from the outbox: how far the client has seen. This host's outbox reader may be
  // behind it (another host served the client until now, or this one just restarted), so events
  // the client already has can still come live here; they are not sent again. Cleared by the
  // first live outbox event past it (live events come in that order).
  std::optional<OutboxPosition> seen_;
  bool already_seen(const OutboxPosition& p);
  std::unique_ptr<boost::asio::steady_timer> timer_;
  char read_byte_ = 0;
  bool active_ = false;  // something was written since the last heartbeat
  bool closing_ = false;
  bool replayed_any_ = false;
  bool finished_ = false;
  bool admitted_ = false;
};

}  // namespace pgfanout::hub
