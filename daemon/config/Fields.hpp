// Fields: schema rows that store their value. A row made with
//
//   {"http.read_timeout", Duration, "10s", kRestart, kPlain, kOptional, "...",
//    config::field<&HttpConfig::read_timeout>(config::at_least(100, "must be at least 100ms"))},
//
// names the member its value goes into and the range it must be in, so an area's loader reads its
// section with read_fields() (every bound row under that mapping, defaults from the rows) and
// check_fields() (the ranges), and its struct takes its defaults from the same rows
// (apply_defaults()). The struct's member type chooses the reader: std::string, bool,
// std::vector<std::string>, std::chrono::milliseconds or seconds (Duration), integers and double
// (Int, or Size when the row says so).
#pragma once

#include <charconv>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "config/ConfigSchema.hpp"
#include "config/YamlReader.hpp"

namespace pgfanout::config {

// Integers: within [min, max].
constexpr Range between(std::int64_t min, std::int64_t max) {
  return Range{min, max, {}};
}
// Durations (milliseconds) and sizes (bytes): at least `min`, else `message`.
constexpr Range at_least(std::int64_t min, std::string_view message) {
  return Range{min, std::numeric_limits<std::int64_t>::max(), message};
}
inline constexpr Range kPositive{1, std::numeric_limits<std::int64_t>::max(), "must be positive"};

namespace detail {

template <class M>
struct MemberOf;
template <class S, class T>
struct MemberOf<T S::*> {
  using Section = S;
  using Value = T;
};

template <class T>
constexpr bool kIsDuration =
    std::is_same_v<T, std::chrono::milliseconds> || std::is_same_v<T, std::chrono::seconds>;

template <class T>
T read_value(MapReader& m, const KeySpec& spec) {
  const auto key = spec.name();
  if constexpr (std::is_same_v<T, std::string>) {
    return m.string(key);
  } else if constexpr (std::is_same_v<T, bool>) {
    return m.boolean(key);
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    return m.string_list(key);
  } else if constexpr (kIsDuration<T>) {
    return std::chrono::duration_cast<T>(m.duration(key));
  } else {
    static_assert(std::is_arithmetic_v<T>);
    if (spec.type == KeyType::Size) return static_cast<T>(m.size(key));
    return static_cast<T>(m.integer(key, spec.bind.range.min, spec.bind.range.max));
  }
}

template <class T>
T default_value(const KeySpec& spec) {
  const auto text = spec.default_value;
  if constexpr (std::is_same_v<T, std::string>) {
    return std::string(text);
  } else if constexpr (std::is_same_v<T, bool>) {
    return text == "true";
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    return text.empty() ? T{} : YAML::Load(std::string(text)).as<T>();
  } else if constexpr (kIsDuration<T>) {
    return std::chrono::duration_cast<T>(
        parse_duration(text).value_or(std::chrono::milliseconds{}));
  } else {
    if (spec.type == KeyType::Size) return static_cast<T>(parse_size(text).value_or(0));
    std::int64_t v = 0;
    std::from_chars(text.data(), text.data() + text.size(), v);
    return static_cast<T>(v);
  }
}

template <class T>
std::int64_t magnitude(const T& v) {
  if constexpr (kIsDuration<T>) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(v).count();
  } else {
    return static_cast<std::int64_t>(v);
  }
}

}  // namespace detail

// The binding of a row to the member M (`&Section::member`), with its range.
template <auto M>
Binding field(Range range = {}) {
  using Section = typename detail::MemberOf<decltype(M)>::Section;
  using T = typename detail::MemberOf<decltype(M)>::Value;
  Binding b;
  b.section = &typeid(Section);
  b.range = range;
  b.read = [](MapReader& m, const KeySpec& spec, void* s) {
    static_cast<Section*>(s)->*M = detail::read_value<T>(m, spec);
  };
  if constexpr (detail::kIsDuration<T> || (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)) {
    b.below_min = [](const KeySpec& spec, const void* s) {
      if (spec.bind.range.below_min.empty()) return false;
      return detail::magnitude(static_cast<const Section*>(s)->*M) < spec.bind.range.min;
    };
  }
  b.set_default = [](const KeySpec& spec, void* s) {
    static_cast<Section*>(s)->*M = detail::default_value<T>(spec);
  };
  return b;
}

// Reads every row under `m` that stores into an S (absent keys take the row's default).
template <class S>
void read_fields(MapReader& m, S& out) {
  for (const KeySpec* spec : m.ctx().schema.children(m.schema_path())) {
    if (spec->bind.section != nullptr && *spec->bind.section == typeid(S)) {
      spec->bind.read(m, *spec, &out);
    }
  }
}

// Reports each duration or size of `m`'s rows for S below its minimum.
template <class S>
void check_fields(MapReader& m, const S& value) {
  for (const KeySpec* spec : m.ctx().schema.children(m.schema_path())) {
    if (spec->bind.section == nullptr || *spec->bind.section != typeid(S)) continue;
    if (spec->bind.below_min != nullptr && spec->bind.below_min(*spec, &value)) {
      m.error(spec->name(), std::string(spec->bind.range.below_min));
    }
  }
}

// Gives every member of `out` that a row of `rows` stores into that row's default.
template <class S>
void apply_defaults(std::span<const KeySpec> rows, S& out) {
  for (const auto& spec : rows) {
    if (spec.bind.section != nullptr && *spec.bind.section == typeid(S)) {
      spec.bind.set_default(spec, &out);
    }
  }
}

}  // namespace pgfanout::config
