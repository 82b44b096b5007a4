// HippiePoll: Web::Hippie's long-poll transport (`/_hippie/poll/<channel>`).
//
// A first poll (no client_id) opens a pipe — a subscriber that buffers the channel's messages —
// and answers `[{"type":"hippie.pipe.set_client_id","client_id":ID}]`. A poll with that client_id
// gets the buffered messages as a JSON array at once, or waits for the next one up to
// hub.hippie_ping and then gets `[{"type":"ping"}]`. A pipe whose buffer passes
// hub.send_queue_size is dropped (counted as slow), and one not polled for three ping intervals
// is closed. Pipes count as hub connections. A client_id is looked up only when it has the form
// of the ids handed out (32 hex digits); any other is refused (400 bad_request). An unknown id
// gets a new pipe, like a first poll; a new pipe whose id never comes back is closed after one
// ping interval, and at most half of hub.max_connections such pipes are open at once (beyond,
// 503 unavailable), so made-up ids cannot take every hub connection. Loop 0 (the daemon's
// event loop) only: each poll is an HTTP request of the daemon's HTTP server.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "hub/HubState.hpp"

namespace pgfanout::hub {

class HippiePoll : public std::enable_shared_from_this<HippiePoll> {
 public:
  explicit HippiePoll(std::shared_ptr<HubState> hub);
  ~HippiePoll();

  void poll(boost::beast::tcp_stream&& stream, const std::string& channel,
            const std::string& client_id, std::optional<Identity> identity);
  void stop();

 private:
  class Pipe;
  void sweep();
  std::size_t max_unclaimed() const;

  std::shared_ptr<HubState> hub_;
  std::unordered_map<std::string, std::shared_ptr<Pipe>> pipes_;
  std::unique_ptr<boost::asio::steady_timer> sweep_timer_;
  std::size_t unclaimed_ = 0;  // pipes whose id has not been polled yet
  bool sweeping_ = false;
};

}  // namespace pgfanout::hub
