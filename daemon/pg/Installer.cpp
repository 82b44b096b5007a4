#include "pg/Installer.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "pg/ConnInfo.hpp"
#include "pg/SqlBundle.hpp"

namespace pgfanout::pg {

namespace {

using ConnPtr = std::unique_ptr<PGconn, decltype(&PQfinish)>;
using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

std::string error_of(PGconn* c, PGresult* r) {
  std::string e = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(c);
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  return e;
}

// One blocking connection with statements whose parameters are bound, never spliced in.
class Session {
 public:
  explicit Session(const PostgresConfig& postgres) : conn_(nullptr, &PQfinish) {
    ConnParams params(postgres.dsn, postgres.password, postgres.connect_timeout);
    conn_.reset(PQconnectdbParams(params.keywords(), params.values(), 1));
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
      error = "cannot connect to " + describe(postgres.dsn) + ": " + error_of(conn_.get(), nullptr);
    }
  }
  bool ok() const { return error.empty(); }

  // Runs `sql` with text parameters (a null pointer is SQL NULL); the rows of the result, or
  // nullopt with `error` set.
  std::optional<std::vector<std::vector<std::string>>> run(
      const std::string& sql, const std::vector<const char*>& params = {}) {
    ResultPtr r(params.empty()
                    ? PQexec(conn_.get(), sql.c_str())
                    : PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(params.size()),
                                   nullptr, params.data(), nullptr, nullptr, 0),
                &PQclear);
    auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      error = error_of(conn_.get(), r.get());
      return std::nullopt;
    }
    std::vector<std::vector<std::string>> rows(PQntuples(r.get()));
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      for (int j = 0; j < PQnfields(r.get()); ++j) rows[i].emplace_back(PQgetvalue(r.get(), i, j));
    }
    return rows;
  }
  // The single value of a one-row, one-column query ("" when NULL or no row).
  std::optional<std::string> value(const std::string& sql,
                                   const std::vector<const char*>& params = {}) {
    auto rows = run(sql, params);
    if (!rows) return std::nullopt;
    return rows->empty() || (*rows)[0].empty() ? std::string() : (*rows)[0][0];
  }

  std::string error;

 private:
  ConnPtr conn_;
};

bool watch_notify(Session& s, const WatchSpec& w) {
  std::string columns = w.columns.empty() ? std::string() : text_array(w.columns);
  std::string ops = text_array(w.ops);
  std::string changed = w.changed.empty() ? std::string() : text_array(w.changed);
  std::vector<const char*> p = {w.table.c_str(),
                                w.channel.empty() ? nullptr : w.channel.c_str(),
                                w.columns.empty() ? nullptr : columns.c_str(),
                                ops.c_str(),
                                w.changed.empty() ? nullptr : changed.c_str(),
                                w.per_statement ? "true" : "false",
                                w.durable ? "true" : "false"};
  return s
      .run(
          "SELECT pgfanout.watch($1::regclass, $2::text, $3::text[], $4::text[], "
          "$5::text[], $6::boolean, $7::boolean)",
          p)
      .has_value();
}

// wal_level must be logical; an unlimited max_slot_wal_keep_size is worth a warning.
bool check_wal_settings(Session& s, InstallResult& result) {
  auto level = s.value("SHOW wal_level");
  if (!level) return false;
  if (*level != "logical") {
    s.error = "the WAL source needs wal_level = logical, the server has " + *level +
              " (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)";
    return false;
  }
  auto keep = s.value("SHOW max_slot_wal_keep_size");
  if (!keep) return false;
  if (*keep == "-1") {
    result.notices.push_back(
        "warning: max_slot_wal_keep_size is unlimited: while no pgfanout streams from the slot, "
        "the primary keeps all WAL since the slot's position and can fill its disk (set a "
        "limit, e.g. ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; see docs/wal.md)");
  }
  return true;
}

// The publication's tables become exactly `tables`; the names are quoted by the server
// (regclass output), never spliced from the config.
bool sync_publication(Session& s, const WalConfig& wal, const std::vector<std::string>& tables) {
  std::string list = text_array(tables);
  auto exists = s.value("SELECT count(*) FROM pg_catalog.pg_publication WHERE pubname = $1",
                        {wal.publication.c_str()});
  if (!exists) return false;
  auto stmt = s.value(
      "SELECT CASE WHEN $3::text = '0' THEN pg_catalog.format('CREATE PUBLICATION %I', $1::text) "
      "            WHEN cardinality($2::text[]) = 0 THEN pg_catalog.format("
      "                 'DROP PUBLICATION %1$I; CREATE PUBLICATION %1$I', $1::text) "
      "            ELSE pg_catalog.format('ALTER PUBLICATION %I SET TABLE ', $1::text) END "
      "    || CASE WHEN $3::text = '0' AND cardinality($2::text[]) > 0 THEN ' FOR TABLE ' ELSE '' "
      "END "
      "    || coalesce((SELECT pg_catalog.string_agg(t::regclass::text, ', ') "
      "                   FROM pg_catalog.unnest($2::text[]) t), '') "
      "    || pg_catalog.format('; ALTER PUBLICATION %I SET "
      "                          (publish = ''insert, update, delete, truncate'', "
      "                           publish_via_partition_root = true)', $1::text)",
      {wal.publication.c_str(), list.c_str(), exists->c_str()});
  return stmt && s.run(*stmt);
}

// UPDATE and DELETE on a published table need a replica identity, and old values beyond the
// identity's columns need FULL.
bool set_replica_identity(Session& s, const std::string& table, const OldValues* needs,
                          InstallResult& result) {
  std::string wanted = text_array(needs ? needs->columns : std::vector<std::string>{});
  // The identity's columns: the replica identity index, else the primary key (for DEFAULT).
  auto rows = s.run(
      "SELECT c.oid::regclass::text, c.relreplident, "
      "       (SELECT pg_catalog.string_agg(x, ', ') FROM pg_catalog.unnest($2::text[]) x "
      "         WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i "
      "           JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid "
      "                AND a.attnum = ANY (i.indkey::pg_catalog.int2[]) "
      "          WHERE i.indrelid = c.oid AND a.attname = x "
      "            AND (i.indisreplident OR (c.relreplident = 'd' AND i.indisprimary)))), "
      "       EXISTS (SELECT 1 FROM pg_catalog.pg_index i "
      "         WHERE i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident)) "
      "FROM pg_catalog.pg_class c WHERE c.oid = $1::regclass",
      {table.c_str(), wanted.c_str()});
  if (!rows || rows->empty()) return rows.has_value();
  const auto& r = (*rows)[0];
  const std::string& name = r[0];
  const bool full = r[1] == "f";
  const bool has_identity = r[1] == "i" || (r[1] == "d" && r[3] == "t");
  const std::string& beyond_key = r[2];  // columns the rules read that the identity lacks
  const bool needs_old = needs != nullptr && (needs->all || !beyond_key.empty());
  std::string why;
  if (needs_old && !full) {
    why = needs->all ? "its watch has `changed:` (old and new rows are compared)"
                     : "its rules read old values of " + beyond_key + ", not only its key";
  }
  if (!needs_old && !full && !has_identity) why = "it has no primary key or replica identity index";
  if (why.empty()) return true;
  auto stmt = s.value("SELECT pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY FULL', $1::text)",
                      {name.c_str()});
  if (!stmt || !s.run(*stmt)) return false;
  result.notices.push_back("set REPLICA IDENTITY FULL on " + name + ": " + why +
                           " (each UPDATE and DELETE then writes the whole old row to the WAL)");
  return true;
}

// Creates the slot when missing (outside a transaction that wrote: PostgreSQL's rule).
bool ensure_slot(Session& s, const WalConfig& wal, InstallResult& result) {
  auto rows = s.run(
      "SELECT plugin, coalesce(database, ''), coalesce(wal_status, '') = 'lost', "
      "       database = pg_catalog.current_database() "
      "FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
      {wal.slot.c_str()});
  if (!rows) return false;
  if (!rows->empty()) {
    const auto& r = (*rows)[0];
    if (r[0] != "pgoutput" || r[3] != "t") {
      s.error = "replication slot \"" + wal.slot + "\" exists for another use (plugin " + r[0] +
                ", database " + r[1] + "); choose another wal.slot";
      return false;
    }
    if (r[2] == "t") {
      result.notices.push_back("slot " + wal.slot +
                               " is lost (its WAL was removed); the daemon re-creates it");
    }
    return true;
  }
  if (!s.run("SELECT pg_catalog.pg_create_logical_replication_slot($1::name, 'pgoutput')",
             {wal.slot.c_str()})) {
    return false;
  }
  result.notices.push_back("created the replication slot " + wal.slot);
  return true;
}

}  // namespace

InstallResult install(const PostgresConfig& postgres, const std::vector<WatchSpec>& watch,
                      const WalPlan& plan) {
  InstallResult result;
  Session s(postgres);
  auto failed = [&](const std::string& context) {
    result.error = context.empty() ? s.error : context + ": " + s.error;
    return result;
  };
  if (!s.ok()) return failed("");
  if (plan.wal != nullptr && !check_wal_settings(s, result)) return failed("");
  if (!s.run("BEGIN")) return failed("");
  std::string sql(trigger_sql());
  if (!sql.empty() && !s.run(sql)) return failed("applying the trigger-generator SQL failed");
  bool notify_watches = false;
  for (const auto& w : watch) notify_watches = notify_watches || w.via != "wal";
  if (notify_watches) {
    auto native = s.value("SELECT pgfanout.native_enabled()");
    if (!native) return failed("");
    result.notices.push_back(
        *native == "t" ? "watch triggers: native (the server's pgfanout_native library)"
                       : "watch triggers: PL/pgSQL (the native ones need the pgfanout_native "
                         "library on the server and a superuser, or a role granted EXECUTE on "
                         "pgfanout.native_row() and pgfanout.native_statement(): "
                         "docs/triggers.md#native-triggers)");
  }
  std::vector<std::string> wal_tables;
  for (const auto& w : watch) {
    if (w.via == "wal") {
      // A trigger left by an earlier `via: notify` would report each change twice.
      if (!s.run("SELECT pgfanout.unwatch($1::regclass)", {w.table.c_str()})) {
        return failed("watch " + w.table);
      }
      const OldValues* needs = nullptr;
      for (const auto& o : plan.old_values) {
        if (o.table == w.table) needs = &o;
      }
      if (plan.wal != nullptr && !set_replica_identity(s, w.table, needs, result)) {
        return failed("watch " + w.table);
      }
      wal_tables.push_back(w.table);
    } else if (!watch_notify(s, w)) {
      return failed("watch " + w.table);
    }
    ++result.watched;
  }
  if (plan.wal != nullptr && !sync_publication(s, *plan.wal, wal_tables)) {
    return failed("publication " + plan.wal->publication);
  }
  if (!s.run("COMMIT")) return failed("");
  // The publication exists before the slot's first position: decoding never meets a change from
  // before it.
  if (plan.wal != nullptr && !ensure_slot(s, *plan.wal, result)) {
    return failed("slot " + plan.wal->slot);
  }
  result.ok = true;
  return result;
}

InstallResult drop_wal(const PostgresConfig& postgres, const WalConfig& wal) {
  InstallResult result;
  Session s(postgres);
  if (!s.ok()) {
    result.error = s.error;
    return result;
  }
  auto active = s.value(
      "SELECT coalesce(active_pid::text, '') FROM pg_catalog.pg_replication_slots "
      "WHERE slot_name = $1",
      {wal.slot.c_str()});
  if (!active) {
    result.error = s.error;
    return result;
  }
  if (!active->empty()) {
    result.error = "slot " + wal.slot + " is in use by server process " + *active +
                   " (a running pgfanout); stop it first";
    return result;
  }
  auto dropped = s.value(
      "SELECT count(pg_catalog.pg_drop_replication_slot(slot_name)) "
      "FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
      {wal.slot.c_str()});
  auto stmt = s.value("SELECT pg_catalog.format('DROP PUBLICATION IF EXISTS %I', $1::text)",
                      {wal.publication.c_str()});
  if (!dropped || !stmt || !s.run(*stmt)) {
    result.error = s.error;
    return result;
  }
  result.notices.push_back(*dropped == "1" ? "dropped the replication slot " + wal.slot
                                           : "no replication slot " + wal.slot);
  result.notices.push_back("dropped the publication " + wal.publication + " (if it existed)");
  result.ok = true;
  return result;
}

}  // namespace pgfanout::pg
