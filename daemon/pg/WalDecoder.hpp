// WalDecoder: turns the pgoutput messages of a logical replication stream into the events the
// NOTIFY path delivers, so that rules and actions see the same thing whichever source a watched
// table uses. Stateful per connection (the relation cache, the open transaction); no I/O: the
// caller feeds each XLogData payload with its LSN and runs the queries it asks for.
//
// Row changes of tables watched `via: wal` become the trigger generators' envelope
// (sql/triggers/010_payload.sql, 020_watch.sql) with the watch's `columns`, `ops`, `changed` and
// `per_statement` applied, plus "lsn":"X/Y" (the change's position):
//   {"v":1,"op":"UPDATE","schema":"public","table":"users","new":{..},"old":{..},
//    "txid":"1234","at":"2026-11-22T10:00:00.123Z","lsn":"0/16B3748"}
// INSERT carries "new", DELETE "old", UPDATE both. Where it differs from the trigger's:
// - "old" is the whole old row only under REPLICA IDENTITY FULL. Otherwise PostgreSQL logs only
//   the old key: an UPDATE's "old" has the key columns (from the new row when the key did not
//   change), a DELETE's "old" has the key columns; and without the old row `changed:` cannot be
//   tested, so every UPDATE is sent.
// - A TOASTed value an UPDATE left unchanged is not in the WAL. It is taken from the old row
//   when there is one; otherwise it is left out of "new" and named in "unchanged_toast":["body"].
//   It never appears as null, and it counts as unchanged for `changed:`.
// - A value whose JSON needs the server (a cast to json such as PostGIS geometry's, a composite)
//   is its text output as a string, and the column is named in "as_text" (see WalTypes.hpp).
// - "at" is the commit time (the trigger prints statement_timestamp(), the start of the
//   statement); both are UTC with milliseconds.
// - "txid" is the transaction's xid8 (pg_current_xact_id()), widened from pgoutput's 32-bit
//   xid as the full id nearest the reference given by set_reference_xid (an xid8 the caller read
//   when it connected; each transaction then becomes the reference for the next).
// - There is no 8000-byte NOTIFY limit, so nothing is cut to its key ("truncated" never appears).
// - per_statement: the WAL does not mark statements, so consecutive changes of the same table
//   and op in a transaction (up to kStatementRows rows) form one "statement", sent as parts of at
//   most kPartBytes bytes with "part", "parts" and "rows" as the trigger sends them.
// - TRUNCATE sends nothing, as with the triggers.
// An unqualified watch table (`users`) means public.users.
//
// Streaming (protocol 2, `streaming on`): a large transaction arrives in blocks before its
// commit. Its events are appended to `out` as they are decoded, marked with stream_xid (the
// top-level xid) and subxid (the xid the change carries); row changes come without their tail
// (needs_tail): the commit time
// ("at") is known only at Stream Commit, which returns the txid and at for append_tail(). A
// per_statement group of a streamed transaction is cut with room for the longest tail. Stream
// Abort says which staged events to drop (a whole transaction, or one subtransaction and those
// after it).
//
// Logical messages with the prefix (default "pgfanout", what pgfanout.emit writes) carry an app
// event: content `<channel>\n<payload>`, delivered on channel with the payload as it is.
// Messages with other prefixes are ignored.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pg/PgConfig.hpp"
#include "pg/PgOutput.hpp"
#include "pg/WalTypes.hpp"

namespace pgfanout::pg {

struct WalEvent {
  std::string channel;
  std::string payload;
  std::uint64_t lsn = 0;
  std::uint32_t stream_xid = 0;  // of an in-progress transaction streamed before its commit
  std::uint32_t subxid = 0;
  bool needs_tail = false;  // a streamed row change: its payload ends before ,"txid"...
};

class WalDecoder {
 public:
  static constexpr std::size_t kStatementRows = 1000;
  static constexpr std::size_t kPartBytes = 7999;

  struct Result {
    enum Kind {
      Ok,            // nothing for the caller to do
      Begin,         // a transaction starts
      Commit,        // it ended; commit_lsn is the end of its commit record (what to confirm)
      NeedTypes,     // load `types` with kTypeCatalogSql, give the rows to types().add_row, go on
      Skipped,       // an app message that cannot be an event (`error` says why): count, go on
      Error,         // error: a malformed message or a protocol violation; reconnect
      StreamCommit,  // streamed transaction xid committed at commit_lsn (its end): its staged
                     // events, each completed with append_tail(txid, at, event.lsn), are delivered
      StreamAbort,   // drop the staged events of xid's subtransaction subxid and after (all of
                     // xid's when subxid == xid)
    } kind = Ok;
    std::uint64_t commit_lsn = 0;
    std::uint32_t xid = 0, subxid = 0;
    std::string txid, at;
    std::vector<TypeOid> types;
    std::string error;
  };

  // `watches`: the watch entries; those whose `via` is not "wal" are ignored.
  explicit WalDecoder(const std::vector<WatchSpec>& watches,
                      std::string message_prefix = "pgfanout");

  // One pgoutput message (an XLogData payload) at `lsn`; events are appended to `out`.
  Result feed(std::string_view message, std::uint64_t lsn, std::vector<WalEvent>& out);

  // The xid8 that 32-bit xids are widened around (SELECT pg_current_xact_id()).
  void set_reference_xid(std::uint64_t xid8) { reference_xid_ = xid8; }
  // The key of a table whose replica identity is FULL (where the Relation message marks every
  // column as key; the key always travels with `columns:`): one row of kTableKeySql, a table
  // schema, table and one of its key columns, rows in key order. False for a malformed row.
  // A load of them starts with begin_table_keys() and takes effect at end_table_keys(), so a
  // reload replaces the keys (a column that left a key leaves it here too).
  void begin_table_keys() { staged_keys_.clear(); }
  bool add_table_key_row(const std::vector<std::string>& row);
  void end_table_keys() { table_keys_ = std::move(staged_keys_); }
  // The key columns in effect for a table (empty when none were loaded).
  std::vector<std::string> table_key_columns(const std::string& schema,
                                             const std::string& table) const {
    auto it = table_keys_.find({schema, table});
    return it == table_keys_.end() ? std::vector<std::string>{} : it->second;
  }
  // $1 and $2 of kTableKeySql for the tables watched via wal: text[] literals of their schemas
  // and names.
  std::vector<std::string> table_key_params() const;

  TypeCatalog& types() { return types_; }
  // A new connection: forget relations and any open transaction (types and keys stay).
  void reset();

  // The 32-bit xid as the xid8 nearest `reference`.
  static std::uint64_t widen_xid(std::uint32_t xid, std::uint64_t reference);
  // Microseconds since 2000-01-01 as the trigger's "at": 2026-11-22T10:00:00.123Z.
  static std::string format_at(std::int64_t pg_time);
  // Appends the end of an envelope to s: ,"txid":"..","at":"..","lsn":".."}
  static void append_tail(std::string_view txid, std::string_view at, std::uint64_t lsn,
                          std::string& s);
  // The longest append_tail() writes (a 20-digit txid, the largest LSN).
  static constexpr std::size_t kMaxTailBytes = 105;

 private:
  struct Watch {
    WatchSpec spec;
    std::string schema, table;  // parsed from spec.table
    std::vector<std::string> ops;
  };
  struct Rel {
    pgoutput::Relation rel;
    const Watch* watch = nullptr;
    std::string channel;
    std::vector<bool> key, keep, changed;  // per column
    std::vector<std::size_t> order;        // the kept columns in jsonb key order
  };
  struct Pending {  // a per_statement group not yet sent
    const Rel* rel = nullptr;
    std::string op;
    std::vector<std::string> elements;
    std::uint64_t lsn = 0;
    std::uint32_t subxid = 0;
  };

  Result relation(pgoutput::Relation&& r);
  void row(const Rel& rel, const char* op, const pgoutput::Tuple* old_tuple, char old_kind,
           const pgoutput::Tuple* new_tuple, std::uint64_t lsn, std::vector<WalEvent>& out);
  void flush(std::vector<WalEvent>& out);
  static void append_head(const Rel& rel, std::string_view op, std::string& s);
  WalEvent event(std::string channel, std::string payload, std::uint64_t lsn) const;

  std::vector<const pgoutput::Value*> now_;  // row()'s scratch: the new row's values
  std::vector<Watch> watches_;
  std::string prefix_;
  TypeCatalog types_;
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> table_keys_, staged_keys_;
  std::unordered_map<pgoutput::Oid, Rel> relations_;
  std::uint64_t reference_xid_ = 0;
  bool in_transaction_ = false;
  std::string txid_, at_;  // of the open transaction
  Pending pending_;
  bool in_stream_ = false;  // between Stream Start and Stream Stop
  std::uint32_t stream_xid_ = 0, change_xid_ = 0;
  std::unordered_map<std::uint32_t, std::string> stream_txids_;  // streamed, not yet ended
};

// Loads the keys for add_table_key_row (primary key, else the replica identity index, as
// pgfanout.key_columns): $1, $2 from table_key_params(); columns: schema, table, a key column,
// in key order.
extern const char* const kTableKeySql;

}  // namespace pgfanout::pg
