// RetryPolicy: what happens after each webhook attempt, and when the next one is due.
//
// The schedule lists the delay before each attempt: the first entry (normally 0s) is the first
// attempt, so a schedule of 8 entries means at most 8 attempts. Each retry waits a random time
// between 0 and its entry (full jitter), so that many deliveries failing together do not come
// back together. A 2xx response is delivered. 429 and 503 honour `Retry-After` (seconds or an
// HTTP date) instead of the schedule when it is given. 410 Gone disables the endpoint (until the
// config is reloaded). Codes in `permanent` (default 400, 401, 403, 404, 422) fail at once to the
// dead letters. Anything else (other codes, no response) is retried until the schedule runs out,
// then dead-lettered. Immutable after construction; decide() draws the jitter from the caller's
// random generator.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "webhook/Clock.hpp"

namespace pgfanout::webhook {

struct AttemptResult {
  int status = 0;  // 0: no HTTP response (connect error, timeout, connection closed)
  std::string error;
  std::string body_excerpt;
  std::string retry_after;  // the Retry-After header, when present
};

enum class Verdict { Delivered, Retry, Dead, EndpointGone };

struct Decision {
  Verdict verdict = Verdict::Delivered;
  Clock::time_point next_attempt{};  // for Retry
  std::string reason;                // for Retry and Dead: why, for logs and the dead letter
};

class RetryPolicy {
 public:
  static std::vector<std::chrono::milliseconds> default_schedule();
  static std::vector<int> default_permanent();

  RetryPolicy();
  RetryPolicy(std::vector<std::chrono::milliseconds> schedule, std::vector<int> permanent);

  // After attempt number `attempt` (1 for the first) ended with `result`, at `clock.now()`.
  Decision decide(int attempt, const AttemptResult& result, const Clock& clock,
                  std::mt19937_64& rng) const;

  int max_attempts() const { return static_cast<int>(schedule_.size()); }
  const std::vector<std::chrono::milliseconds>& schedule() const { return schedule_; }
  const std::vector<int>& permanent() const { return permanent_; }
  // Longest Retry-After honoured: the longest step of the schedule (at least one minute).
  std::chrono::milliseconds max_retry_after() const;

 private:
  std::vector<std::chrono::milliseconds> schedule_;
  std::vector<int> permanent_;
};

// Parses a Retry-After value: delay-seconds or an IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT").
// Returns the delay from `now` (zero for a date in the past), or nullopt when it does not parse.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           Clock::time_point now);

// "2xx", "4xx", "5xx" or "error" (status 0), for metric labels.
std::string_view status_class(int status);

}  // namespace pgfanout::webhook
