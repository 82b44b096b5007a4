#include "pg/ReplicationProtocol.hpp"

#include <chrono>
#include <cstdio>

namespace pgfanout::pg {

namespace {

std::uint64_t read_be64(std::string_view s, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

void put_be64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::uint32_t> parse_hex32(std::string_view s) {
  if (s.empty() || s.size() > 8) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : s) {
    int d = hex_value(c);
    if (d < 0) return std::nullopt;
    v = (v << 4) | static_cast<std::uint32_t>(d);
  }
  return v;
}

}  // namespace

std::string format_lsn(Lsn lsn) {
  // Upper-case hex of each half without leading zeros, as pg_lsn prints it (once per event:
  // without printf).
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(17);
  auto half = [&](std::uint32_t v) {
    int shift = 28;
    while (shift > 0 && ((v >> shift) & 0xf) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4) out += kHex[(v >> shift) & 0xf];
  };
  half(static_cast<std::uint32_t>(lsn >> 32));
  out += '/';
  half(static_cast<std::uint32_t>(lsn & 0xffffffffu));
  return out;
}

std::optional<Lsn> parse_lsn(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto hi = parse_hex32(text.substr(0, slash));
  auto lo = parse_hex32(text.substr(slash + 1));
  if (!hi || !lo) return std::nullopt;
  return (static_cast<Lsn>(*hi) << 32) | *lo;
}

PgTime pg_now() {
  auto since_unix = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return since_unix.count() - kPgEpochOffsetMicros;
}

ReplicationMessage parse_replication_message(std::string_view data) {
  if (data.empty()) return ReplicationError{"empty replication message"};
  switch (data[0]) {
    case 'w': {
      // 'w', WAL start, WAL end, send time, then the payload.
      if (data.size() < 25) return ReplicationError{"short XLogData message"};
      XLogData x;
      x.wal_start = read_be64(data, 1);
      x.wal_end = read_be64(data, 9);
      x.send_time = static_cast<PgTime>(read_be64(data, 17));
      x.payload = data.substr(25);
      return x;
    }
    case 'k': {
      // 'k', WAL end, send time, reply requested.
      if (data.size() < 18) return ReplicationError{"short primary keepalive message"};
      PrimaryKeepalive k;
      k.wal_end = read_be64(data, 1);
      k.send_time = static_cast<PgTime>(read_be64(data, 9));
      k.reply_requested = data[17] != 0;
      return k;
    }
    default: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "unknown replication message type 0x%02x",
                    static_cast<unsigned char>(data[0]));
      return ReplicationError{buf};
    }
  }
}

std::string build_standby_status(const StandbyStatus& status) {
  std::string out;
  out.reserve(34);
  out.push_back('r');
  put_be64(out, status.written);
  put_be64(out, status.flushed);
  put_be64(out, status.applied);
  put_be64(out, static_cast<std::uint64_t>(status.client_time));
  out.push_back(status.reply_requested ? 1 : 0);
  return out;
}

}  // namespace pgfanout::pg
