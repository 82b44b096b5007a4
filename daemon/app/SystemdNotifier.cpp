#include "app/SystemdNotifier.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace pgfanout::app {

namespace asio = boost::asio;

namespace {

// STATUS= is one line; a newline would start another assignment.
std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

void notify(const std::string& message) {
  int r = sd_notify(0, message.c_str());
  if (r < 0) spdlog::debug("sd_notify failed: {}", std::strerror(-r));
}

}  // namespace

struct SystemdNotifier::Impl {
  explicit Impl(asio::io_context& io) : watchdog_timer(io), status_timer(io) {}

  void ping() {
    notify("WATCHDOG=1");
    watchdog_timer.expires_after(watchdog / 2);
    watchdog_timer.async_wait([this](boost::system::error_code ec) {
      if (!ec) ping();
    });
  }

  void refresh_status() {
    if (source) {
      std::string text = one_line(source());
      if (text != last_status) {
        last_status = text;
        notify("STATUS=" + text);
      }
    }
    status_timer.expires_after(status_every);
    status_timer.async_wait([this](boost::system::error_code ec) {
      if (!ec) refresh_status();
    });
  }

  asio::steady_timer watchdog_timer, status_timer;
  std::chrono::microseconds watchdog{0};
  std::function<std::string()> source;
  std::chrono::milliseconds status_every{2000};
  std::string last_status;
};

SystemdNotifier::SystemdNotifier(asio::io_context& io) : impl_(std::make_unique<Impl>(io)) {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) impl_->watchdog = std::chrono::microseconds(usec);
}

SystemdNotifier::~SystemdNotifier() = default;

bool SystemdNotifier::enabled() const {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  return socket != nullptr && *socket != '\0';
}

void SystemdNotifier::ready(std::string_view status) {
  impl_->last_status = one_line(status);
  notify("READY=1\nSTATUS=" + impl_->last_status);
}

void SystemdNotifier::reloading() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  auto usec = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u +
              static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
  impl_->last_status = "reloading the configuration";
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=" + impl_->last_status);
}

void SystemdNotifier::stopping(std::string_view status) {
  impl_->last_status = one_line(status);
  notify("STOPPING=1\nSTATUS=" + impl_->last_status);
}

void SystemdNotifier::status(std::string_view text) {
  impl_->last_status = one_line(text);
  notify("STATUS=" + impl_->last_status);
}

std::chrono::microseconds SystemdNotifier::watchdog_interval() const {
  return impl_->watchdog;
}

void SystemdNotifier::start(std::function<std::string()> source,
                            std::chrono::milliseconds status_every) {
  impl_->source = std::move(source);
  impl_->status_every = status_every;
  if (impl_->watchdog.count() > 0) {
    spdlog::info("systemd watchdog enabled: pinging every {} ms", impl_->watchdog.count() / 2000);
    impl_->ping();
  }
  impl_->refresh_status();
}

void SystemdNotifier::stop() {
  impl_->watchdog_timer.cancel();
  impl_->status_timer.cancel();
}

}  // namespace pgfanout::app
