// Clock: the wall clock behind webhook scheduling, behind an interface so tests can set the time.
//
// Retry delays, Retry-After dates and the `webhook-timestamp` header all read now() from here.
// SystemClock is the real one; ManualClock holds a time that tests set and advance, so retry
// schedules of hours are tested without sleeping. Implementations must be safe to call from the
// event loop thread; ManualClock is not meant to be shared between threads.
#pragma once

#include <chrono>

namespace pgfanout::webhook {

class Clock {
 public:
  using time_point = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point now() const = 0;
};

class SystemClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::system_clock::now(); }
  static SystemClock& instance() {
    static SystemClock clock;
    return clock;
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(time_point start = time_point(std::chrono::seconds(1'700'000'000)))
      : now_(start) {}
  time_point now() const override { return now_; }
  void set(time_point t) { now_ = t; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  time_point now_;
};

}  // namespace pgfanout::webhook
