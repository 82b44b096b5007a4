// CallbackSink: an EventSink whose calls go to std::functions, for tests that drive one event
// source (NotifyListener, OutboxReader) without the daemon. Unset functions ignore the call.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "pg/EventSource.hpp"

namespace pgfanout::test {

struct CallbackSink final : pg::EventSink {
  std::function<void(pg::Notification&&, std::shared_ptr<pg::EventCompletion>)> event;
  std::function<void()> batch_end;
  std::function<void(bool first, bool missed_events)> connected;
  std::function<void(const std::string& why)> disconnected;
  std::function<void(const std::string& why)> fatal;
  std::function<void(const std::string& why)> events_lost;

  void on_event(pg::EventSource&, pg::Notification&& n,
                std::shared_ptr<pg::EventCompletion> completion) override {
    if (event) event(std::move(n), std::move(completion));
  }
  void on_batch_end(pg::EventSource&) override {
    if (batch_end) batch_end();
  }
  void on_connected(pg::EventSource&, bool first, bool missed_events) override {
    if (connected) connected(first, missed_events);
  }
  void on_disconnected(pg::EventSource&, const std::string& why) override {
    if (disconnected) disconnected(why);
  }
  void on_events_lost(pg::EventSource&, const std::string& why) override {
    if (events_lost) events_lost(why);
  }
  void on_fatal(pg::EventSource&, const std::string& why) override {
    if (fatal) fatal(why);
  }
};

}  // namespace pgfanout::test
