// Builds messages of PostgreSQL's wire protocols byte for byte, for tests: big-endian integers,
// NUL-terminated strings, pgoutput text values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pgfanout::test {

struct Bytes {
  std::string s;
  Bytes& c(char v) {
    s.push_back(v);
    return *this;
  }
  Bytes& be(std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  Bytes& u8(std::uint8_t v) { return be(v, 1); }
  Bytes& u16(std::uint16_t v) { return be(v, 2); }
  Bytes& u32(std::uint32_t v) { return be(v, 4); }
  Bytes& u64(std::uint64_t v) { return be(v, 8); }
  Bytes& str(std::string_view v) {
    s.append(v);
    s.push_back('\0');
    return *this;
  }
  Bytes& text(std::string_view v) {
    c('t').u32(static_cast<std::uint32_t>(v.size()));
    s.append(v);
    return *this;
  }
};

}  // namespace pgfanout::test
