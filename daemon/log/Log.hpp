// Logging set-up and per-event rate limiting.
//
// pgfanout logs through spdlog's default logger to stderr. Under systemd (JOURNAL_STREAM set) each
// line carries a syslog priority prefix such as "<4>" and no timestamp (journald adds its own),
// and a message with line breaks is written on one line (one journal entry);
// on a terminal lines carry a timestamp. Secrets are never passed to the logger: callers redact
// connection strings first (see pg/ConnInfo.hpp).
//
// RateLimitedLog limits how often one kind of per-event message (a bad payload, a missing template
// field) is written: at most `burst` lines per `window` per key, then one summary line saying how
// many were suppressed. It is used from the event loop only (not thread-safe).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include <spdlog/spdlog.h>

namespace pgfanout {

enum class LogTarget { Auto, Terminal, Journal };

// Installs the default logger. `level` is one of trace, debug, info, warn, error, off.
// Returns false (and leaves the level unchanged) for an unknown level name.
bool setup_logging(std::string_view level, LogTarget target = LogTarget::Auto);
bool set_log_level(std::string_view level);
bool valid_log_level(std::string_view level);

class RateLimitedLog {
 public:
  explicit RateLimitedLog(std::chrono::milliseconds window = std::chrono::seconds(10),
                          int burst = 5)
      : window_(window), burst_(burst) {}

  // Writes `message` at `level` unless `key` has used its burst in the current window.
  void log(spdlog::level::level_enum level, std::string_view key, std::string_view message);
  void warn(std::string_view key, std::string_view message) {
    log(spdlog::level::warn, key, message);
  }

 private:
  struct Slot {
    std::chrono::steady_clock::time_point window_start;
    int written = 0;
    std::uint64_t suppressed = 0;
  };
  std::chrono::milliseconds window_;
  int burst_;
  std::unordered_map<std::string, Slot> slots_;
};

}  // namespace pgfanout
