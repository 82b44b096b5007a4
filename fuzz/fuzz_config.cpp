// Fuzzes the config loader: any bytes as a config file must give a config or errors, never a
// crash, a hang or an exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "app/Config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "SET") return std::string("value");
    return std::nullopt;
  };
  auto result = pgfanout::app::load_config_text(text, "fuzz.yaml", env);
  if (!result.config && result.errors.empty()) __builtin_trap();  // a failure must say why
  return 0;
}
