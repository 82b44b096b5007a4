// Decoding of the messages of PostgreSQL's pgoutput logical decoding plugin, protocol versions 1
// and 2 (the payload of each XLogData; see "Logical Replication Message Formats" in PostgreSQL's
// docs): Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate and logical
// Message, and protocol 2's Stream Start, Stream Stop, Stream Commit and Stream Abort (an
// in-progress transaction sent in blocks before its commit), into plain structs. Inside a stream
// block (between Stream Start and Stream Stop) Relation, Type, Insert, Update, Delete, Truncate
// and Message carry the xid of their (sub)transaction after the type byte. Tuple values are in text
// format. Bounds-checked: a short, malformed or unknown message is an error value, never a crash.
//
// Lifetimes: string_view members (tuple values, a message's prefix and content) point into the
// bytes given to decode_pgoutput and are valid as long as they are; std::string members own.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pgfanout::pg::pgoutput {

using Oid = std::uint32_t;
using Lsn = std::uint64_t;
using PgTime = std::int64_t;  // microseconds since 2000-01-01 00:00:00 UTC

struct Begin {
  Lsn final_lsn = 0;  // the LSN of the commit record
  PgTime commit_time = 0;
  std::uint32_t xid = 0;
};

struct Commit {
  std::uint8_t flags = 0;
  Lsn commit_lsn = 0;
  Lsn end_lsn = 0;  // the end of the commit record: where a consumer confirms it
  PgTime commit_time = 0;
};

struct Origin {
  Lsn commit_lsn = 0;
  std::string name;
};

struct Column {
  bool key = false;  // part of the replica identity (every column under REPLICA IDENTITY FULL)
  std::string name;
  Oid type = 0;
  std::int32_t typmod = -1;
};

struct Relation {
  Oid oid = 0;
  std::string schema;  // "" for pg_catalog, as pgoutput sends it
  std::string name;
  char replica_identity = 'd';  // d(efault), n(othing), f(ull), i(ndex)
  std::vector<Column> columns;
};

struct Type {
  Oid oid = 0;
  std::string schema;
  std::string name;
};

// One column of a tuple: 'n' NULL, 'u' an unchanged TOASTed value (not sent), 't' text.
struct Value {
  char kind = 'n';
  std::string_view text;  // for 't'
};
using Tuple = std::vector<Value>;

struct Insert {
  Oid relation = 0;
  Tuple new_tuple;
};

struct Update {
  Oid relation = 0;
  char old_kind =
      0;  // 0: no old tuple; 'K': the old key (the key changed); 'O': the old row (FULL)
  Tuple old_tuple;
  Tuple new_tuple;
};

struct Delete {
  Oid relation = 0;
  char old_kind = 'K';  // 'K' or 'O'
  Tuple old_tuple;
};

struct Truncate {
  std::uint8_t options = 0;  // 1: CASCADE, 2: RESTART IDENTITY
  std::vector<Oid> relations;
};

struct Message {
  bool transactional = false;
  Lsn lsn = 0;
  std::string_view prefix;
  std::string_view content;
};

// Protocol 2: a block of an in-progress transaction follows, up to StreamStop.
struct StreamStart {
  std::uint32_t xid = 0;  // the top-level transaction
  bool first_segment = false;
};

struct StreamStop {};

struct StreamCommit {
  std::uint32_t xid = 0;
  std::uint8_t flags = 0;
  Lsn commit_lsn = 0;
  Lsn end_lsn = 0;
  PgTime commit_time = 0;
};

// xid == subxid: the whole transaction rolled back; otherwise the subtransaction subxid (and the
// subtransactions it started) did.
struct StreamAbort {
  std::uint32_t xid = 0;
  std::uint32_t subxid = 0;
};

struct DecodeError {
  std::string message;
};

using PgOutputMessage =
    std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate, Message,
                 StreamStart, StreamStop, StreamCommit, StreamAbort, DecodeError>;

// `in_stream`: the message is inside a stream block, so the messages that carry one start with
// an xid, stored in *xid (when given; 0 otherwise).
PgOutputMessage decode_pgoutput(std::string_view data, bool in_stream = false,
                                std::uint32_t* xid = nullptr);

}  // namespace pgfanout::pg::pgoutput
