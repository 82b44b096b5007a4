#include "metrics/Metrics.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace pgfanout {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(new std::atomic<std::uint64_t>[bounds_.size()]) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(double v) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (v <= bounds_[i]) {
      counts_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  if (v > 0) sum_micros_.fetch_add(static_cast<std::uint64_t>(v * 1e6), std::memory_order_relaxed);
}

double Histogram::sum() const {
  return static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
}

std::vector<double> latency_buckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
}

Metrics::Family& Metrics::family(std::string_view name, std::string_view help, Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{type, std::string(help), {}, {}, {}}).first;
  } else if (it->second.type != type) {
    throw std::logic_error("metric " + std::string(name) + " registered with two types");
  }
  return it->second;
}

Counter& Metrics::counter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& slot = family(name, help, Type::Counter).counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& Metrics::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& slot = family(name, help, Type::Gauge).gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& Metrics::histogram(std::string_view name, std::string_view help, const Labels& labels,
                              std::vector<double> bounds) {
  std::lock_guard lock(mutex_);
  auto& slot = family(name, help, Type::Histogram).histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(std::move(bounds));
  return *slot;
}

CounterFamily::CounterFamily(Metrics& metrics, std::string name, std::string help,
                             std::vector<std::string> label_names, Labels fixed)
    : metrics_(metrics),
      name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      fixed_(std::move(fixed)) {}

Counter& CounterFamily::with(std::initializer_list<std::string_view> values) {
  if (values.size() != label_names_.size()) {
    throw std::logic_error("metric " + name_ + " takes " + std::to_string(label_names_.size()) +
                           " label values");
  }
  std::lock_guard lock(mutex_);
  key_.clear();
  // Each value prefixed by its length, so that no two sets of values make the same key.
  for (std::string_view v : values) {
    const auto n = static_cast<std::uint32_t>(v.size());
    key_.append(reinterpret_cast<const char*>(&n), sizeof n);
    key_ += v;
  }
  if (auto it = counters_.find(std::string_view(key_)); it != counters_.end()) return *it->second;
  Labels labels = fixed_;
  auto name = label_names_.begin();
  for (std::string_view v : values) labels.emplace_back(*name++, std::string(v));
  Counter& c = metrics_.counter(name_, help_, labels);
  counters_.emplace(key_, &c);
  return c;
}

namespace {

void append_escaped(std::string& out, std::string_view v, bool label) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        if (label) {
          out += "\\\"";
        } else {
          out += c;
        }
        break;
      default:
        out += c;
    }
  }
}

void append_labels(std::string& out, const Labels& labels, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    append_escaped(out, v, true);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

std::string format_number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Shortest text that reads back as the same double: "0.1", not "0.10000000000000001".
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

}  // namespace

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out.reserve(4096);
  for (const auto& [name, fam] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_escaped(out, fam.help, false);
    out += "\n# TYPE ";
    out += name;
    out += fam.type == Type::Counter ? " counter\n"
           : fam.type == Type::Gauge ? " gauge\n"
                                     : " histogram\n";
    for (const auto& [labels, c] : fam.counters) {
      out += name;
      append_labels(out, labels);
      out += ' ';
      out += std::to_string(c->value());
      out += '\n';
    }
    for (const auto& [labels, g] : fam.gauges) {
      out += name;
      append_labels(out, labels);
      out += ' ';
      out += format_number(g->value());
      out += '\n';
    }
    for (const auto& [labels, h] : fam.histograms) {
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < h->bounds().size(); ++i) {
        cumulative += h->bucket(i);
        out += name;
        out += "_bucket";
        append_labels(out, labels, "le", format_number(h->bounds()[i]));
        out += ' ';
        out += std::to_string(cumulative);
        out += '\n';
      }
      out += name;
      out += "_bucket";
      append_labels(out, labels, "le", "+Inf");
      out += ' ';
      out += std::to_string(h->count());
      out += '\n';
      out += name;
      out += "_sum";
      append_labels(out, labels);
      out += ' ';
      out += format_number(h->sum());
      out += '\n';
      out += name;
      out += "_count";
      append_labels(out, labels);
      out += ' ';
      out += std::to_string(h->count());
      out += '\n';
    }
  }
  return out;
}

double Metrics::value(std::string_view name, const Labels& labels) const {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  if (auto c = it->second.counters.find(labels); c != it->second.counters.end()) {
    return static_cast<double>(c->second->value());
  }
  if (auto g = it->second.gauges.find(labels); g != it->second.gauges.end()) {
    return static_cast<double>(g->second->value());
  }
  if (auto h = it->second.histograms.find(labels); h != it->second.histograms.end()) {
    return static_cast<double>(h->second->count());
  }
  return 0;
}

}  // namespace pgfanout
