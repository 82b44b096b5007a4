// EventLoopLag: a handler that holds the loop shows as lag in pgfanout_event_loop_lag_seconds and
// in the max gauge; an idle loop shows little.
#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "app/EventLoopLag.hpp"
#include "metrics/Metrics.hpp"

namespace pgfanout::app {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(EventLoopLag, AHandlerThatHoldsTheLoopIsMeasured) {
  asio::io_context io;
  Metrics m;
  EventLoopLag lag(io, m, 5ms);
  lag.start();
  asio::steady_timer stall(io, 20ms);
  stall.async_wait([](boost::system::error_code) { std::this_thread::sleep_for(80ms); });
  asio::steady_timer end(io, 200ms);
  end.async_wait([&](boost::system::error_code) { lag.stop(); });
  io.run();

  EXPECT_GE(lag.worst(), 70ms);
  EXPECT_GE(m.value("pgfanout_event_loop_lag_max_seconds"), 0.07);
  EXPECT_GT(m.value("pgfanout_event_loop_lag_seconds"), 10) << "one measurement every 5 ms";
  const std::string text = m.render();
  EXPECT_NE(text.find("# TYPE pgfanout_event_loop_lag_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("pgfanout_event_loop_lag_seconds_bucket{le=\"0.02\"} "), std::string::npos);
  EXPECT_NE(text.find("pgfanout_event_loop_lag_seconds_bucket{le=\"0.1\"} "), std::string::npos);
}

TEST(EventLoopLag, StopEndsTheMeasurements) {
  asio::io_context io;
  Metrics m;
  EventLoopLag lag(io, m, 1ms);
  lag.start();
  lag.stop();
  io.run_for(50ms);
  EXPECT_TRUE(io.stopped()) << "nothing left to run";
  EXPECT_EQ(m.value("pgfanout_event_loop_lag_seconds"), 0);
}

}  // namespace
}  // namespace pgfanout::app
