#include "webhook/RetryPolicy.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace pgfanout::webhook {

using namespace std::chrono_literals;

std::vector<std::chrono::milliseconds> RetryPolicy::default_schedule() {
  return {0ms, 5s, 5min, 30min, 2h, 5h, 10h, 10h};
}

std::vector<int> RetryPolicy::default_permanent() {
  return {400, 401, 403, 404, 422};
}

RetryPolicy::RetryPolicy() : RetryPolicy(default_schedule(), default_permanent()) {}

RetryPolicy::RetryPolicy(std::vector<std::chrono::milliseconds> schedule,
                         std::vector<int> permanent)
    : schedule_(std::move(schedule)), permanent_(std::move(permanent)) {
  if (schedule_.empty()) schedule_.push_back(0ms);
}

std::chrono::milliseconds RetryPolicy::max_retry_after() const {
  auto longest = *std::max_element(schedule_.begin(), schedule_.end());
  return std::max<std::chrono::milliseconds>(longest, 1min);
}

Decision RetryPolicy::decide(int attempt, const AttemptResult& result, const Clock& clock,
                             std::mt19937_64& rng) const {
  Decision d;
  const int s = result.status;
  if (s >= 200 && s < 300) return d;
  if (s == 410) {
    d.verdict = Verdict::EndpointGone;
    d.reason = "410 Gone: the endpoint asked not to be called again";
    return d;
  }
  d.reason = s == 0 ? result.error : "HTTP " + std::to_string(s);
  if (std::find(permanent_.begin(), permanent_.end(), s) != permanent_.end()) {
    d.verdict = Verdict::Dead;
    d.reason += " (permanent)";
    return d;
  }
  if (attempt >= max_attempts()) {
    d.verdict = Verdict::Dead;
    d.reason += " (after " + std::to_string(attempt) + " attempts)";
    return d;
  }
  d.verdict = Verdict::Retry;
  auto now = clock.now();
  if ((s == 429 || s == 503) && !result.retry_after.empty()) {
    if (auto after = parse_retry_after(result.retry_after, now)) {
      d.next_attempt = now + std::min(*after, max_retry_after());
      return d;
    }
  }
  auto step = schedule_[static_cast<std::size_t>(attempt)];
  std::uniform_int_distribution<std::int64_t> jitter(0, step.count());
  d.next_attempt = now + std::chrono::milliseconds(jitter(rng));
  return d;
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           Clock::time_point now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return std::nullopt;
    return std::chrono::seconds(std::stoll(std::string(value)));
  }
  // IMF-fixdate, the form RFC 9110 requires senders to use.
  std::tm tm{};
  char wday[4] = {}, mon[4] = {}, zone[4] = {};
  std::string text(value);
  if (std::sscanf(text.c_str(), "%3s, %d %3s %d %d:%d:%d %3s", wday, &tm.tm_mday, mon, &tm.tm_year,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, zone) != 8 ||
      std::string_view(zone) != "GMT") {
    return std::nullopt;
  }
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto it = std::find(std::begin(kMonths), std::end(kMonths), std::string_view(mon));
  if (it == std::end(kMonths)) return std::nullopt;
  tm.tm_mon = static_cast<int>(it - std::begin(kMonths));
  tm.tm_year -= 1900;
  std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  auto at = std::chrono::system_clock::from_time_t(t);
  if (at <= now) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(at - now);
}

std::string_view status_class(int status) {
  if (status >= 200 && status < 300) return "2xx";
  if (status >= 300 && status < 400) return "3xx";
  if (status >= 400 && status < 500) return "4xx";
  if (status >= 500 && status < 600) return "5xx";
  return "error";
}

}  // namespace pgfanout::webhook
