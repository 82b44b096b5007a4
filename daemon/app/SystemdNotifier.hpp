// SystemdNotifier: tells systemd what the daemon is doing, through sd_notify(3).
//
// With `Type=notify` systemd considers the service started only at READY=1, shows STATUS= lines in
// `systemctl status`, and, with WatchdogSec=, restarts the service when WATCHDOG=1 pings stop.
// The pings come from a timer on the daemon's event loop at half the watchdog interval, so a stuck
// loop stops them and gets the process restarted. Without NOTIFY_SOCKET (not run by systemd)
// every call does nothing. Used on the io_context's thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
}

namespace pgfanout::app {

class SystemdNotifier {
 public:
  explicit SystemdNotifier(boost::asio::io_context& io);
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  // Whether a notification socket was given (NOTIFY_SOCKET).
  bool enabled() const;

  void ready(std::string_view status);
  // RELOADING=1 (with MONOTONIC_USEC, as systemd 253's Type=notify-reload wants); call ready()
  // when the reload is over, whether it worked or not.
  void reloading();
  void stopping(std::string_view status);
  void status(std::string_view text);

  // The watchdog interval systemd asked for (WATCHDOG_USEC, for this process), or zero.
  std::chrono::microseconds watchdog_interval() const;
  // Starts the WATCHDOG=1 pings when a watchdog is enabled, and refreshes STATUS= from `source`
  // every `status_every` (only when the text changed).
  void start(std::function<std::string()> source,
             std::chrono::milliseconds status_every = std::chrono::seconds(2));
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgfanout::app
