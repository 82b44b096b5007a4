// WebSocketSession: one WebSocket client of the hub (`/ws`, or `/_hippie/ws/<channel>`).
//
// In the style of the Beast examples: run() accepts the upgrade, do_read()/on_read() take one
// client message at a time (read a fragment at a time, so that a message dripped in fragments
// can be given a deadline, hub.message_timeout). Beast reads and does the handshake, pongs and
// close; what the hub sends leaves through the QueuedStream under Beast: frames are encoded once
// per event (shared by all subscribers, see Wire.hpp) and whatever queued up for this client goes
// out in one gather write. The queue is bounded in bytes (hub.send_queue_size): a client that falls
// behind is closed with 1013 and counted, and nobody else waits for it. Beast's idle timeout pings
// an idle client and closes one that stops answering. The read buffer is released after each
// message and a read asks for at most 256 bytes, so an idle connection holds little more than the
// socket, Beast's stream state and its pending read (docs/benchmarks.md has the bytes).
//
// Protocol mode speaks docs/protocol.md; Hippie mode speaks Web::Hippie's pipe protocol for one
// channel. Lives by shared_ptr; every handler runs on its hub loop's thread (HubLoops.hpp).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "hub/HubState.hpp"
#include "hub/QueuedStream.hpp"

namespace pgfanout::hub {

class WebSocketSession : public std::enable_shared_from_this<WebSocketSession>,
                         public Subscriber,
                         public HubConnection {
 public:
  enum class Mode { Protocol, Hippie };

  // Runs on `shard`'s loop, the one of `stream`'s socket.
  WebSocketSession(std::shared_ptr<HubState> hub, HubShard& shard,
                   boost::beast::tcp_stream&& stream, Mode mode, std::string hippie_topic = {});
  ~WebSocketSession();

  // Accepts the upgrade. `claims`: from a token already verified in the request's headers;
  // `subprotocol`: the Sec-WebSocket-Protocol value to answer with ("" for none).
  void run(boost::beast::http::request<boost::beast::http::string_body> request,
           std::optional<Identity> identity, std::string subprotocol);

  void deliver(const HubMessage& message) override;
  void resync(std::string_view topic) override;
  void shutdown() override;
  void recheck() override;

 private:
  void on_accept(boost::beast::error_code ec);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void start_message_deadline();
  void handle(std::string_view text);
  void handle_hippie(std::string_view text);
  void subscribe(const ClientMessage& m);
  void unsubscribe(const ClientMessage& m);
  std::vector<std::string> replay_after(const ClientMessage& m);
  bool subscribed(std::string_view topic) const;

  // `json`: a message of docs/protocol.md (or Hippie's), encoded here.
  void send(std::string_view json);
  // `frame`: an encoded WebSocket frame.
  void send_frame(std::shared_ptr<const std::string> frame);
  bool over_limit(std::size_t more);
  void close(boost::beast::websocket::close_code code, std::string_view reason);
  void start_ping();
  void finish();

  const auth::Claims* claims() const { return identity_ ? &identity_->claims : nullptr; }
  // Stops delivering `topic` (its held events too); false when it was not subscribed.
  bool remove_topic(std::string_view topic);

  struct Held {
    std::string topic;
    std::vector<std::shared_ptr<const std::string>> frames;  // encoded
  };

  boost::beast::websocket::stream<QueuedStream> ws_;
  boost::beast::flat_buffer buffer_;
  std::shared_ptr<HubState> hub_;
  HubShard* shard_;
  Mode mode_;
  std::unique_ptr<const std::string> hippie_topic_;  // Hippie mode only
  // On the heap: most connections of a busy hub are idle subscribers, many without a token,
  // and a map in place would cost each of them its size.
  std::unique_ptr<Identity> identity_;
  std::size_t held_bytes_ = 0;
  std::vector<std::string> topics_;
  std::vector<Held> held_;  // live events kept back until on_subscribe rows are sent
  RateLimit commands_;
  std::unique_ptr<RateLimit> logins_;                 // made at the first login attempt
  std::unique_ptr<boost::asio::steady_timer> timer_;  // Hippie pings; the hard close of a slow one
  // Set while fragments of a message have arrived but not its last one: its deadline.
  std::unique_ptr<boost::asio::steady_timer> message_timer_;
  bool accepted_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool admitted_ = false;
};

}  // namespace pgfanout::hub
