// The scalar syntaxes of the config file (durations, sizes) and the edit distance behind "did you
// mean" hints; declared in config/YamlReader.hpp.
#include <algorithm>
#include <charconv>
#include <cmath>

#include "config/YamlReader.hpp"

namespace pgfanout::config {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t unit_at = 0;
  while (unit_at < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[unit_at])) || text[unit_at] == '.')) {
    ++unit_at;
  }
  if (unit_at == 0) return std::nullopt;
  double number = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + unit_at, number);
  if (ec != std::errc() || p != text.data() + unit_at) return std::nullopt;
  std::string_view unit = text.substr(unit_at);
  double factor = 0;
  if (unit == "ms") {
    factor = 1;
  } else if (unit == "s") {
    factor = 1000;
  } else if (unit == "m" || unit == "min") {
    factor = 60'000;
  } else if (unit == "h") {
    factor = 3'600'000;
  } else if (unit == "d") {
    factor = 86'400'000;
  } else {
    return std::nullopt;
  }
  double ms = number * factor;
  if (!std::isfinite(ms) || ms > 1e15) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(ms)));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t unit_at = 0;
  while (unit_at < text.size() && std::isdigit(static_cast<unsigned char>(text[unit_at]))) {
    ++unit_at;
  }
  if (unit_at == 0) return std::nullopt;
  std::uint64_t number = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + unit_at, number);
  if (ec != std::errc()) return std::nullopt;
  std::string_view unit = text.substr(unit_at);
  std::uint64_t factor = 0;
  if (unit.empty() || unit == "B") {
    factor = 1;
  } else if (unit == "KB") {
    factor = 1000;
  } else if (unit == "KiB") {
    factor = 1024;
  } else if (unit == "MB") {
    factor = 1000 * 1000;
  } else if (unit == "MiB") {
    factor = 1024 * 1024;
  } else if (unit == "GB") {
    factor = 1000ull * 1000 * 1000;
  } else if (unit == "GiB") {
    factor = 1024ull * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  if (number > UINT64_MAX / factor) return std::nullopt;
  return number * factor;
}

}  // namespace pgfanout::config
