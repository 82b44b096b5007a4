#include "app/ProcessMetrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>

#include "metrics/Metrics.hpp"

namespace pgfanout::app {

ProcessMetrics::ProcessMetrics(Metrics& m)
    : started_(std::chrono::steady_clock::now()),
      uptime_(m.gauge("pgfanout_uptime_seconds", "Seconds since the daemon started")),
      resident_(m.gauge("process_resident_memory_bytes", "Resident memory size in bytes")),
      virtual_(m.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes")),
      open_fds_(m.gauge("process_open_fds", "Open file descriptors")),
      max_fds_(m.gauge("process_max_fds", "Limit on open file descriptors")) {
  m.gauge("process_start_time_seconds",
          "Start time of the process since the Unix epoch, in seconds")
      .set(static_cast<std::int64_t>(std::time(nullptr)));
  m.gauge("pgfanout_build_info", "Always 1; the labels say which build is running",
          {{"version", PGFANOUT_VERSION}})
      .set(1);
}

void ProcessMetrics::update() {
  uptime_.set(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_)
          .count());
  long page = ::sysconf(_SC_PAGESIZE);
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  if (statm >> size >> resident) {
    virtual_.set(size * page);
    resident_.set(resident * page);
  }
  std::error_code ec;
  std::int64_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++fds;
  }
  if (!ec) open_fds_.set(fds > 0 ? fds - 1 : 0);  // minus the descriptor that lists the directory
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    max_fds_.set(static_cast<std::int64_t>(limit.rlim_cur));
  }
}

}  // namespace pgfanout::app
