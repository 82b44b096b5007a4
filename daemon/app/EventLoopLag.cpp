#include "app/EventLoopLag.hpp"

#include <vector>

#include "metrics/Metrics.hpp"

namespace pgfanout::app {

namespace {

// From a tenth of a millisecond, the timer's own resolution under load, to several seconds, with
// a bound at 20 ms (a stall that an interactive client notices).
std::vector<double> lag_buckets() {
  return {0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
}

}  // namespace

EventLoopLag::EventLoopLag(boost::asio::io_context& io, Metrics& metrics,
                           std::chrono::steady_clock::duration interval)
    : timer_(io),
      interval_(interval),
      lag_(metrics.histogram("pgfanout_event_loop_lag_seconds",
                             "How late the event loop ran a timer: the time every event then "
                             "waiting waited for other work",
                             {}, lag_buckets())),
      max_(metrics.gauge("pgfanout_event_loop_lag_max_seconds",
                         "The largest event loop lag since the daemon started")) {}

void EventLoopLag::start() {
  running_ = true;
  arm();
}

void EventLoopLag::stop() {
  running_ = false;
  timer_.cancel();
}

void EventLoopLag::arm() {
  timer_.expires_after(interval_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || !running_) return;
    const auto late = std::chrono::steady_clock::now() - timer_.expiry();
    lag_.observe(std::chrono::duration<double>(late).count());
    if (late > worst_) {
      worst_ = late;
      max_.set(std::chrono::duration<double>(late).count());
    }
    arm();
  });
}

}  // namespace pgfanout::app
