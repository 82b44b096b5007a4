// ShutdownDrain: waits, at shutdown, until the executors have no pending actions or a deadline
// passes, whichever comes first, then calls `done` once with the number still pending (0 when
// everything finished).
//
// It polls `pending` on a timer of the event loop (executors finish their work on the same loop,
// so polling is what lets them run). Event loop only; must outlive the wait.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

#include <boost/asio/steady_timer.hpp>

namespace pgfanout::app {

class ShutdownDrain {
 public:
  ShutdownDrain(boost::asio::io_context& io, std::function<std::size_t()> pending,
                std::chrono::milliseconds poll_every = std::chrono::milliseconds(20));

  void start(std::chrono::milliseconds deadline, std::function<void(std::size_t left)> done);
  void cancel();

 private:
  void check();

  boost::asio::steady_timer timer_;
  std::function<std::size_t()> pending_;
  std::chrono::milliseconds poll_every_;
  std::chrono::steady_clock::time_point deadline_{};
  std::function<void(std::size_t)> done_;
};

}  // namespace pgfanout::app
