// Metrics: the daemon's counters, gauges and histograms, rendered as Prometheus text.
//
// A metric is created once (find-or-create by name and labels) and the returned reference stays
// valid for the registry's lifetime, so hot paths look a metric up at setup time and then only
// touch an atomic. Looking a metric up builds its label set and takes a mutex: never do it per
// event. When the label values are only known at run time (a reason, an error code, a route),
// hold a CounterFamily, which registers each set of values once and then finds it again without
// allocating. Updating is thread-safe; creating and rendering take a mutex. Label values are
// escaped on output; callers keep label sets bounded (rule names, channels from the config, kinds).
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pgfanout {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  std::uint64_t bucket(std::size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // one per bound (not cumulative)
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_micros_{0};  // sum kept in millionths to stay lock-free
};

// Latency buckets in seconds, from 50 microseconds to 10 seconds.
std::vector<double> latency_buckets();

class Metrics {
 public:
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, const Labels& labels = {},
                       std::vector<double> bounds = latency_buckets());

  // Prometheus text exposition format 0.0.4.
  std::string render() const;

  // Value of a counter or gauge, or 0 when it does not exist (for tests and /healthz).
  double value(std::string_view name, const Labels& labels = {}) const;

 private:
  enum class Type { Counter, Gauge, Histogram };
  struct Family {
    Type type;
    std::string help;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  Family& family(std::string_view name, std::string_view help, Type type);

  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;
};

// The counters of one family whose label values are known only at run time, e.g.
// pgfanout_hub_auth_total{result=...}. The first use of a set of values registers its counter in
// the Metrics; later uses find it in a cache keyed by the values, without building a Labels or
// allocating. Thread-safe (a mutex of its own, held for the lookup only); the Metrics must outlive
// it. Keep the value sets bounded, as for any label.
class CounterFamily {
 public:
  CounterFamily(Metrics& metrics, std::string name, std::string help,
                std::vector<std::string> label_names, Labels fixed = {});

  // The counter for `values`, given in the order of the label names.
  Counter& with(std::initializer_list<std::string_view> values);

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  Metrics& metrics_;
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const Labels fixed_;
  std::mutex mutex_;
  std::string key_;  // scratch: the values joined, reused so a lookup does not allocate
  std::unordered_map<std::string, Counter*, Hash, std::equal_to<>> counters_;
};

}  // namespace pgfanout
