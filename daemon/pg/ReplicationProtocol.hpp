// The CopyData framing of PostgreSQL's streaming replication protocol (a replication connection
// after START_REPLICATION): the server's XLogData ('w') and primary keepalive ('k') messages, the
// client's standby status update ('r'), and LSNs in PostgreSQL's text form ("16/B374D848").
// Pure functions over bytes: big-endian, bounds-checked; a short or unknown message is an error
// value, never undefined behaviour. The payload of an XLogData is a view into the caller's buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace pgfanout::pg {

using Lsn = std::uint64_t;

// "16/B374D848": the high and low 32 bits in upper-case hex, as pg_lsn prints them.
std::string format_lsn(Lsn lsn);
// Parses "X/Y" (1 to 8 hex digits on each side, either case); nullopt for anything else.
std::optional<Lsn> parse_lsn(std::string_view text);

// Microseconds since 2000-01-01 00:00:00 UTC (PostgreSQL's epoch), as the protocol sends times.
using PgTime = std::int64_t;
// Microseconds between the Unix epoch and PostgreSQL's.
inline constexpr std::int64_t kPgEpochOffsetMicros = 946'684'800LL * 1'000'000;
// The current time in that form.
PgTime pg_now();

struct XLogData {
  Lsn wal_start = 0;
  Lsn wal_end = 0;
  PgTime send_time = 0;
  std::string_view payload;  // the logical decoding output (a pgoutput message)
};

struct PrimaryKeepalive {
  Lsn wal_end = 0;
  PgTime send_time = 0;
  bool reply_requested = false;
};

struct ReplicationError {
  std::string message;
};

using ReplicationMessage = std::variant<XLogData, PrimaryKeepalive, ReplicationError>;

// One CopyData message of the replication stream (the bytes PQgetCopyData returns).
ReplicationMessage parse_replication_message(std::string_view data);

struct StandbyStatus {
  Lsn written = 0;
  Lsn flushed = 0;
  Lsn applied = 0;
  PgTime client_time = 0;
  bool reply_requested = false;  // ask the server to answer with a keepalive at once
};

// The 34 bytes of a standby status update ('r'), to send with PQputCopyData.
std::string build_standby_status(const StandbyStatus& status);

}  // namespace pgfanout::pg
