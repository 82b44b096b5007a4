// ProcessMetrics: the process-level series of /metrics, under the names Prometheus client
// libraries use (process_resident_memory_bytes, process_open_fds, process_start_time_seconds...),
// plus pgfanout_build_info{version} and pgfanout_uptime_seconds.
//
// update() reads /proc/self and is called just before each scrape renders. Event loop only.
#pragma once

#include <chrono>

namespace pgfanout {
class Metrics;
class Gauge;
}  // namespace pgfanout

namespace pgfanout::app {

class ProcessMetrics {
 public:
  explicit ProcessMetrics(Metrics& metrics);
  void update();

 private:
  std::chrono::steady_clock::time_point started_;
  Gauge& uptime_;
  Gauge& resident_;
  Gauge& virtual_;
  Gauge& open_fds_;
  Gauge& max_fds_;
};

}  // namespace pgfanout::app
