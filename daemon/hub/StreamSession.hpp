// StreamSession: a one-way HTTP stream of a hub's events — Server-Sent Events (`/events`) or
// Web::Hippie's multipart/mixed stream (`/_hippie/mxhr/<channel>`).
//
// run() writes the response head, subscribes to the topics, sends on_subscribe rows and (SSE
// with Last-Event-ID) the durable events missed since that id, then live events. Live events
// that arrive meanwhile are kept back so the order holds. The send queue is bounded in bytes like
// WebSocketSession's (a slow client is closed and counted); an idle stream gets a heartbeat (an
// SSE comment, a Hippie ping). A read is kept pending only to notice the client going away.
// Lives by shared_ptr; every handler runs on the event loop's thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "hub/HubState.hpp"

namespace pgfanout::hub {

class StreamSession : public std::enable_shared_from_this<StreamSession>,
                      public Subscriber,
                      public HubConnection {
 public:
  enum class Format { Sse, Multipart };

  StreamSession(std::shared_ptr<HubState> hub, boost::beast::tcp_stream&& stream, Format format);
  ~StreamSession();

  // `entries[i]` is the topics: entry that allowed `topics[i]`. `resume_unknown`: the client
  // asked to resume from an id that is not one (it gets `resync` for every topic).
  void run(std::vector<std::string> topics, std::vector<std::size_t> entries,
           std::optional<auth::Claims> claims, std::optional<std::int64_t> last_event_id,
           bool resume_unknown = false);

  void deliver(const HubMessage& message) override;
  void resync(std::string_view topic) override;
  void shutdown() override;

 private:
  struct Item {
    std::shared_ptr<const std::string> body;
    std::int64_t id = -1;  // SSE `id:` line when >= 0
    bool raw = false;      // written as it is (head, heartbeats)
  };

  void start_subscriptions();
  void release_held();
  void send(Item item);
  void send_event(std::shared_ptr<const std::string> body, std::int64_t id);
  void do_write();
  void on_write(boost::beast::error_code ec, std::size_t bytes);
  void watch_close();
  void heartbeat();
  void finish();

  boost::beast::tcp_stream stream_;
  std::shared_ptr<HubState> hub_;
  Format format_;
  std::vector<std::string> topics_;
  std::vector<std::size_t> entries_;
  std::optional<auth::Claims> claims_;
  std::optional<std::int64_t> last_event_id_;
  bool resume_unknown_ = false;
  std::vector<Item> queue_;
  std::size_t head_ = 0;
  std::size_t queued_bytes_ = 0;
  int pending_ = 0;  // on_subscribe / replay queries still running; live events are held
  std::vector<std::pair<std::shared_ptr<const std::string>, std::int64_t>> held_;
  std::string scratch_;  // the SSE `id:` / `data:` prefix of the item being written
  std::array<boost::asio::const_buffer, 3> buffers_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  char read_byte_ = 0;
  bool writing_ = false;
  bool active_ = false;  // something was written since the last heartbeat
  bool closing_ = false;
  bool finished_ = false;
  bool admitted_ = false;
};

}  // namespace pgfanout::hub
