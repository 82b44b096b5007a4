#include "log/Log.hpp"

#include <cstdlib>
#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace pgfanout {

namespace {

// Writes the syslog priority journald understands: <3> error ... <7> debug.
class PriorityFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const char* p = "<6>";
    switch (msg.level) {
      case spdlog::level::critical:
        p = "<2>";
        break;
      case spdlog::level::err:
        p = "<3>";
        break;
      case spdlog::level::warn:
        p = "<4>";
        break;
      case spdlog::level::info:
        p = "<6>";
        break;
      default:
        p = "<7>";
        break;
    }
    dest.append(p, p + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<PriorityFlag>();
  }
};

// The message on one line: journald would take each further line for an entry of its own, without
// the priority. A line break and the indentation after it become one space.
class OneLineMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const char* p = msg.payload.data();
    const char* end = p + msg.payload.size();
    while (p != end) {
      if (*p == '\n' || *p == '\r') {
        while (p != end && (*p == '\n' || *p == '\r' || *p == '\t' || *p == ' ')) ++p;
        if (p != end) dest.push_back(' ');
        continue;
      }
      dest.push_back(*p++);
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<OneLineMessage>();
  }
};

bool parse_level(std::string_view name, spdlog::level::level_enum& out) {
  static const std::pair<std::string_view, spdlog::level::level_enum> names[] = {
      {"trace", spdlog::level::trace},  {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},    {"warn", spdlog::level::warn},
      {"warning", spdlog::level::warn}, {"error", spdlog::level::err},
      {"off", spdlog::level::off}};
  for (const auto& [n, l] : names) {
    if (n == name) {
      out = l;
      return true;
    }
  }
  return false;
}

}  // namespace

bool valid_log_level(std::string_view level) {
  spdlog::level::level_enum l;
  return parse_level(level, l);
}

bool set_log_level(std::string_view level) {
  spdlog::level::level_enum l;
  if (!parse_level(level, l)) return false;
  spdlog::set_level(l);
  return true;
}

bool setup_logging(std::string_view level, LogTarget target) {
  if (target == LogTarget::Auto) {
    target = std::getenv("JOURNAL_STREAM") != nullptr ? LogTarget::Journal : LogTarget::Terminal;
  }
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("pgfanout", sink);
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (target == LogTarget::Journal) {
    formatter->add_flag<PriorityFlag>('*').add_flag<OneLineMessage>('&').set_pattern("%*%&");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  }
  logger->set_formatter(std::move(formatter));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return set_log_level(level);
}

void RateLimitedLog::log(spdlog::level::level_enum level, std::string_view key,
                         std::string_view message) {
  auto now = std::chrono::steady_clock::now();
  auto [it, inserted] = slots_.try_emplace(std::string(key));
  Slot& s = it->second;
  if (inserted || now - s.window_start >= window_) {
    if (s.suppressed > 0) {
      spdlog::log(level, "{} (and {} similar messages suppressed)", message, s.suppressed);
      s = Slot{now, 1, 0};
      return;
    }
    s = Slot{now, 0, 0};
  }
  if (s.written < burst_) {
    ++s.written;
    spdlog::log(level, "{}", message);
  } else {
    ++s.suppressed;
  }
}

}  // namespace pgfanout
