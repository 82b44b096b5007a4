// EventLoopLag: how late the event loop runs a timer, exported as the histogram
// pgfanout_event_loop_lag_seconds and the gauge pgfanout_event_loop_lag_max_seconds.
//
// A timer is armed every interval (10 ms by default); when its handler runs, the time past the
// expiry is how long the loop was busy with other handlers — the wait that every event queued on
// the loop at that moment shared. Each measurement is observed in the histogram, and the largest
// since start() is kept in the gauge, so a stall shows in production as in a benchmark. Event
// loop only; stop() before the io_context is destroyed, or let the io_context go first.
#pragma once

#include <chrono>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace pgfanout {
class Metrics;
class Gauge;
class Histogram;
}  // namespace pgfanout

namespace pgfanout::app {

class EventLoopLag {
 public:
  static constexpr std::chrono::milliseconds kDefaultInterval{10};

  EventLoopLag(boost::asio::io_context& io, Metrics& metrics,
               std::chrono::steady_clock::duration interval = kDefaultInterval);

  void start();
  void stop();

  // The largest lag measured since start().
  std::chrono::steady_clock::duration worst() const { return worst_; }

 private:
  void arm();

  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::duration interval_;
  Histogram& lag_;
  Gauge& max_;
  std::chrono::steady_clock::duration worst_{};
  bool running_ = false;
};

}  // namespace pgfanout::app
