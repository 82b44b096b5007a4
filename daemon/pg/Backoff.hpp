// Backoff: reconnect delays that double from `min` to `max`, with equal jitter (each delay is
// between half and all of the doubled value) so that many daemons do not retry in lockstep.
// Not thread-safe; one per reconnecting component.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

namespace pgfanout::pg {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max)
      : min_(min), max_(max), rng_(std::random_device{}()) {}

  std::chrono::milliseconds next() {
    double base = static_cast<double>(min_.count()) * std::pow(2.0, std::min(attempts_, 30));
    base = std::min(base, static_cast<double>(max_.count()));
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    ++attempts_;
    return std::chrono::milliseconds(static_cast<long long>(base * jitter(rng_)));
  }
  void reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  std::chrono::milliseconds min_, max_;
  std::mt19937_64 rng_;
  int attempts_ = 0;
};

}  // namespace pgfanout::pg
