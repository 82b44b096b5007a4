// The WAL envelope against the trigger's: the same changes of a watched table, read once as the
// NOTIFY the trigger generators send and once from a pgoutput slot through pg::WalDecoder, give
// the same payload field for field ("at" differs by design, "lsn" is the WAL's own). Column types
// are table-driven; TOASTed values left unchanged and pgfanout logical messages too.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "pg/ReplicationProtocol.hpp"
#include "pg/SqlBundle.hpp"
#include "pg/WalDecoder.hpp"
#include "support/TestSupport.hpp"

using namespace pgfanout;

namespace {

struct Case {
  const char* column;
  const char* type;
  std::vector<const char*> values;  // text input; each row takes the next, then NULL
};

const std::vector<Case> kCases = {
    {"i2", "int2", {"-32768", "0", "7"}},
    {"o", "oid", {"0", "4294967295"}},  // to_jsonb makes a string of it
    {"i4", "int4", {"2147483647", "-1"}},
    {"i8", "int8", {"9223372036854775807", "-42"}},
    {"num", "numeric", {"1.50", "NaN", "-0.000", "12345678901234567890.123", "Infinity"}},
    {"f4", "float4", {"1.5", "1e+20", "NaN", "-Infinity", "3.4028235e+38"}},
    {"f8", "float8", {"0.1", "1e-07", "1.7976931348623157e+308", "Infinity", "-0"}},
    {"b", "bool", {"true", "false"}},
    {"t", "text", {"plain", "quote \" back \\ nl \n tab \t", "é😀", "\x01\x1f"}},
    {"j",
     "json",
     {R"({"b": 1, "a": [1, 2.50, 1e2], "a": "dup"})", "[]", R"("s")",
      R"({"k":{"z":null,"y":true}})"}},
    {"jb", "jsonb", {R"({"b": 1, "a": [1, 2.50]})", "3", R"(["x", {"é": "\u00e9"}])"}},
    {"ia", "int4[]", {"{1,2,NULL}", "{{1,2},{3,4}}", "[0:1]={5,6}", "{}"}},
    {"ta", "text[]", {R"({"a b","say \"hi\"",NULL,"NULL","x,y"})", "{x}"}},
    {"ts",
     "timestamptz",
     {"2026-11-30 14:42:03.123+00", "infinity", "1850-01-01 00:00:00+00",
      "0044-03-15 12:00:00+00 BC"}},
    {"tsn", "timestamp", {"2026-11-30 14:42:03.5", "-infinity"}},
    {"dt", "date", {"2026-11-30", "0001-01-01 BC"}},
    {"u", "uuid", {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}},
    {"bin", "bytea", {"\\x0102ff", ""}},
    {"iv", "interval", {"1 day 02:00:00", "-3 mons"}},
    {"g", "geography", {"SRID=4326;POINT(1 2)", "SRID=4326;LINESTRING(0 0,1 1)"}},
    {"d", "posint", {"5", "2147483647"}},
    {"m", "mood", {"happy", "sad"}},
    {"da", "posint[]", {"{1,2}"}},
};

// Removes "at" (and "lsn") from a payload: the one field that differs by design.
std::string without_at(const std::string& payload, std::string* at = nullptr) {
  static const std::regex re(R"re(,"at":"([^"]*)"(,"lsn":"[0-9A-F]+/[0-9A-F]+")?)re");
  std::smatch m;
  if (at && std::regex_search(payload, m, re)) *at = m[1];
  return std::regex_replace(payload, re, "");
}

class WalEnvelope : public ::testing::Test {
 protected:
  void SetUp() override {
    db = std::make_unique<test::ScratchDatabase>("wal");
    s = std::make_unique<test::BlockingPg>(db->dsn());
    // The harness turns synchronous_commit off; decoding reads only WAL already flushed.
    s->exec("SET synchronous_commit = on");
    s->exec(std::string(pg::trigger_sql()));
    s->exec("CREATE EXTENSION IF NOT EXISTS postgis");
    s->exec("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')");
    s->exec("CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)");
    slot = db->name();
  }
  void TearDown() override {
    if (slot_created) s->try_exec("SELECT pg_drop_replication_slot('" + slot + "')");
    s.reset();
    db.reset();
  }

  // Publication and slot for `tables`; the decoder for `watches`.
  void start(const std::string& tables, const std::vector<pg::WatchSpec>& watches) {
    s->exec("CREATE PUBLICATION pub FOR TABLE " + tables);
    s->exec("SELECT pg_create_logical_replication_slot('" + slot + "', 'pgoutput')");
    slot_created = true;
    decoder = std::make_unique<pg::WalDecoder>(watches);
    decoder->set_reference_xid(std::stoull(*s->value("SELECT pg_current_xact_id()::text")));
    auto params = decoder->table_key_params();
    decoder->begin_table_keys();
    for (auto& row : rows(pg::kTableKeySql, params)) ASSERT_TRUE(decoder->add_table_key_row(row));
    decoder->end_table_keys();
  }

  std::vector<std::vector<std::string>> rows(const char* sql,
                                             const std::vector<std::string>& params) {
    std::vector<const char*> p;
    for (auto& v : params) p.push_back(v.c_str());
    PGresult* r = PQexecParams(s->raw(), sql, static_cast<int>(p.size()), nullptr, p.data(),
                               nullptr, nullptr, 0);
    std::vector<std::vector<std::string>> out;
    EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQerrorMessage(s->raw());
    for (int i = 0; i < PQntuples(r); ++i) {
      out.emplace_back();
      for (int j = 0; j < PQnfields(r); ++j) out.back().push_back(PQgetvalue(r, i, j));
    }
    PQclear(r);
    return out;
  }

  // Runs a statement with text parameters and collects the notifications it caused.
  void run(const std::string& sql, const std::vector<std::string>& params = {},
           const std::vector<bool>& null = {}) {
    std::vector<const char*> p;
    for (std::size_t i = 0; i < params.size(); ++i)
      p.push_back(i < null.size() && null[i] ? nullptr : params[i].c_str());
    PGresult* r = PQexecParams(s->raw(), sql.c_str(), static_cast<int>(p.size()), nullptr, p.data(),
                               nullptr, nullptr, 0);
    auto st = PQresultStatus(r);
    EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        << sql << ": " << PQerrorMessage(s->raw());
    PQclear(r);
    PQconsumeInput(s->raw());
    while (PGnotify* n = PQnotifies(s->raw())) {
      notified.push_back(n->extra);
      PQfreemem(n);
    }
  }

  // Everything in the slot through the decoder.
  std::vector<pg::WalEvent> read_slot() {
    std::vector<pg::WalEvent> out;
    auto changes = rows(
        "SELECT lsn::text, encode(data, 'hex') FROM pg_logical_slot_get_binary_changes($1, NULL, "
        "NULL, 'proto_version', '1', 'publication_names', 'pub', 'messages', 'true')",
        {slot});
    for (auto& c : changes) {
      std::string bytes;
      for (std::size_t i = 0; i + 1 < c[1].size(); i += 2)
        bytes.push_back(static_cast<char>(std::stoi(c[1].substr(i, 2), nullptr, 16)));
      auto r = decoder->feed(bytes, *pg::parse_lsn(c[0]), out);
      EXPECT_NE(r.kind, pg::WalDecoder::Result::Error) << r.error;
      if (r.kind == pg::WalDecoder::Result::NeedTypes) {
        std::string oids = "{";
        for (auto t : r.types) oids += (oids.size() > 1 ? "," : "") + std::to_string(t);
        for (auto& row : rows(pg::kTypeCatalogSql, {oids + "}"}))
          EXPECT_TRUE(decoder->types().add_row(row));
      }
    }
    return out;
  }

  // The WAL event and the NOTIFY payload of the same change are equal but for "at" and "lsn".
  void expect_same(const pg::WalEvent& wal, const std::string& notify) {
    std::string wal_at, notify_at;
    auto a = without_at(wal.payload, &wal_at);
    auto b = without_at(notify, &notify_at);
    EXPECT_EQ(a, b);
    EXPECT_EQ(wal_at.size(), 24u) << wal_at;
    EXPECT_GE(wal_at, notify_at);  // the commit is after the statement started
    EXPECT_NE(wal.payload.find(",\"lsn\":\"" + pg::format_lsn(wal.lsn) + "\"}"), std::string::npos);
    // Field for field, so that a difference names its column.
    auto wj = boost::json::parse(a).as_object(), nj = boost::json::parse(b).as_object();
    for (const char* image : {"new", "old"}) {
      if (!nj.contains(image)) continue;
      ASSERT_TRUE(wj.contains(image)) << image;
      for (auto& [k, v] : nj.at(image).as_object())
        EXPECT_EQ(boost::json::serialize(wj.at(image).as_object()[k]), boost::json::serialize(v))
            << image << "." << k;
    }
  }

  // The same for an event the trigger wrote to the outbox (a durable watch: no NOTIFY size limit,
  // but kept as jsonb, so compared parsed).
  static void expect_same_parsed(const pg::WalEvent& wal, const std::string& outbox) {
    auto w = boost::json::parse(wal.payload).as_object();
    auto o = boost::json::parse(outbox).as_object();
    EXPECT_TRUE(w.contains("at") && o.contains("at"));
    w.erase("at");
    w.erase("lsn");
    o.erase("at");
    EXPECT_EQ(w, o) << wal.payload << "\n" << outbox;
  }

  std::unique_ptr<test::ScratchDatabase> db;
  std::unique_ptr<test::BlockingPg> s;
  std::unique_ptr<pg::WalDecoder> decoder;
  std::string slot;
  bool slot_created = false;
  std::vector<std::string> notified;
};

pg::WatchSpec wal_watch(const std::string& table) {
  pg::WatchSpec w;
  w.table = table;
  w.via = "wal";
  return w;
}

}  // namespace

TEST_F(WalEnvelope, EveryColumnTypeAsTheTriggerSendsIt) {
  std::string ddl = "CREATE TABLE typed (id int4 PRIMARY KEY";
  std::size_t rows_n = 0;
  for (const auto& c : kCases) {
    ddl += std::string(", ") + c.column + " " + c.type;
    rows_n = std::max(rows_n, c.values.size() + 1);
  }
  s->exec(ddl + ")");
  s->exec("ALTER TABLE typed REPLICA IDENTITY FULL");  // so that "old" is the whole row
  s->exec("SELECT pgfanout.watch('typed')");
  s->exec("LISTEN typed_changed");
  // Another zone than the server's, in the writer's session and (for the slot read here) the
  // decoding session alike.
  s->exec("SET TimeZone = 'Asia/Kolkata'");
  start("typed", {wal_watch("typed")});

  std::string insert = "INSERT INTO typed VALUES ($1";
  std::string update = "UPDATE typed SET ";
  for (std::size_t i = 0; i < kCases.size(); ++i) {
    insert += ", $" + std::to_string(i + 2);
    update += std::string(i ? ", " : "") + kCases[i].column + " = $" + std::to_string(i + 2);
  }
  insert += ")";
  update += " WHERE id = $1";
  auto row = [&](std::size_t id, std::size_t k) {
    std::vector<std::string> values = {std::to_string(id)};
    std::vector<bool> null = {false};
    for (const auto& c : kCases) {
      std::size_t at = k % (c.values.size() + 1);
      values.push_back(at < c.values.size() ? c.values[at] : "");
      null.push_back(at == c.values.size());
    }
    return std::make_pair(values, null);
  };
  for (std::size_t k = 0; k < rows_n; ++k) {
    auto [v, n] = row(k + 1, k);
    run(insert, v, n);
  }
  for (std::size_t k = 0; k < rows_n; ++k) {
    auto [v, n] = row(k + 1, k + 1);
    run(update, v, n);
  }
  run("UPDATE typed SET i2 = i2 WHERE id = 1");  // changes nothing: neither path sends it
  run("DELETE FROM typed");
  auto wal = read_slot();
  ASSERT_EQ(notified.size(), 3 * rows_n);
  ASSERT_EQ(wal.size(), notified.size());
  for (std::size_t i = 0; i < wal.size(); ++i) {
    SCOPED_TRACE("change " + std::to_string(i));
    EXPECT_EQ(wal[i].channel, "typed_changed");
    expect_same(wal[i], notified[i]);
  }
}

TEST_F(WalEnvelope, JsonCastTypeIsMarkedAsText) {
  s->exec("CREATE TABLE shapes (id int4 PRIMARY KEY, geom geometry)");
  s->exec("SELECT pgfanout.watch('shapes')");
  s->exec("LISTEN shapes_changed");
  start("shapes", {wal_watch("shapes")});
  run("INSERT INTO shapes VALUES (1, 'SRID=4326;POINT(1 2)')");
  auto wal = read_slot();
  ASSERT_EQ(wal.size(), 1u);
  ASSERT_EQ(notified.size(), 1u);
  // The trigger has the cast's GeoJSON; the WAL has the text output, and says so.
  EXPECT_NE(notified[0].find(R"("type": "Point")"), std::string::npos) << notified[0];
  auto text = *s->value("SELECT 'SRID=4326;POINT(1 2)'::geometry::text");
  EXPECT_NE(wal[0].payload.find("\"geom\": \"" + text + "\"},\"as_text\":[\"geom\"]"),
            std::string::npos)
      << wal[0].payload;
}

TEST_F(WalEnvelope, UnchangedToastIsNeverNull) {
  s->exec("CREATE TABLE docs (id int4 PRIMARY KEY, title text, body text)");
  s->exec("CREATE TABLE fulldocs (id int4 PRIMARY KEY, title text, body text)");
  s->exec("ALTER TABLE fulldocs REPLICA IDENTITY FULL");
  // Durable watches: a NOTIFY could not carry the value, the outbox keeps the whole event.
  for (const char* t : {"docs", "fulldocs"}) {
    s->exec(std::string("SELECT pgfanout.watch('") + t + "', durable => true)");
  }
  start("docs, fulldocs", {wal_watch("docs"), wal_watch("fulldocs")});
  // About 20 KB of random hex: stored out of line in the TOAST table.
  const std::string body =
      "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 600))";
  for (const char* t : {"docs", "fulldocs"}) {
    run(std::string("INSERT INTO ") + t + " VALUES (1, 'a', " + body + ")");
    run(std::string("UPDATE ") + t + " SET title = 'b'");
  }
  EXPECT_EQ(*s->value("SELECT octet_length(body) FROM docs"), "19200");
  EXPECT_EQ(
      *s->value("SELECT pg_relation_size(reltoastrelid) > 0 FROM pg_class WHERE relname = 'docs'"),
      "t");  // out of line
  std::vector<std::string> outbox;
  for (auto& r : rows("SELECT payload::text FROM pgfanout.outbox ORDER BY id", {}))
    outbox.push_back(r[0]);
  auto wal = read_slot();
  ASSERT_EQ(wal.size(), 4u);
  ASSERT_EQ(outbox.size(), 4u);
  expect_same_parsed(wal[0], outbox[0]);
  // Without the old row: body is left out and named, "old" has the key.
  auto w = boost::json::parse(wal[1].payload).as_object();
  auto o = boost::json::parse(outbox[1]).as_object();
  EXPECT_FALSE(w["new"].as_object().contains("body")) << wal[1].payload;
  EXPECT_EQ(w["unchanged_toast"], boost::json::parse(R"(["body"])"));
  EXPECT_EQ(w["new"].as_object()["title"], o["new"].as_object()["title"]);
  EXPECT_EQ(w["new"].as_object()["id"], o["new"].as_object()["id"]);
  EXPECT_EQ(w["old"], boost::json::parse(R"({"id": 1})"));
  // REPLICA IDENTITY FULL: body comes from the old row, and all is as the trigger's.
  expect_same_parsed(wal[2], outbox[2]);
  expect_same_parsed(wal[3], outbox[3]);
  EXPECT_EQ(wal[3].payload.find("unchanged_toast"), std::string::npos);
}

TEST_F(WalEnvelope, AppEventsFromLogicalMessages) {
  s->exec("CREATE TABLE nothing (id int4 PRIMARY KEY)");
  start("nothing", {});
  run(R"(SELECT pg_logical_emit_message(true, 'pgfanout', 'chan' || E'\n' || '{"x":1}'))");
  run("BEGIN");
  run(R"(SELECT pg_logical_emit_message(true, 'pgfanout', 'chan' || E'\n' || '{"x":2}'))");
  run(R"(SELECT pg_logical_emit_message(false, 'pgfanout', 'now' || E'\n' || 'at once'))");
  run("ROLLBACK");
  run(R"(SELECT pg_logical_emit_message(true, 'other', 'chan' || E'\n' || '{"x":3}'))");
  auto wal = read_slot();
  ASSERT_EQ(wal.size(), 2u);
  EXPECT_EQ(wal[0].channel, "chan");
  EXPECT_EQ(wal[0].payload, R"({"x":1})");
  // The rolled-back transactional message is gone; the non-transactional one was sent at once.
  EXPECT_EQ(wal[1].channel, "now");
  EXPECT_EQ(wal[1].payload, "at once");
}

TEST_F(WalEnvelope, ColumnsChangedOpsAndPerStatementAsTheTrigger) {
  s->exec("CREATE TABLE filtered (id int4 PRIMARY KEY, title text, body text)");
  s->exec("CREATE TABLE batched (id int4 PRIMARY KEY, n int4)");
  s->exec("ALTER TABLE filtered REPLICA IDENTITY FULL");
  s->exec("ALTER TABLE batched REPLICA IDENTITY FULL");
  s->exec(
      "SELECT pgfanout.watch('filtered', columns => '{title}', changed => '{title}', "
      "ops => '{INSERT,UPDATE}')");
  s->exec("SELECT pgfanout.watch('batched', per_statement => true)");
  s->exec("LISTEN filtered_changed");
  s->exec("LISTEN batched_changed");
  auto f = wal_watch("filtered");
  f.columns = {"title"};
  f.changed = {"title"};
  f.ops = {"INSERT", "UPDATE"};
  auto b = wal_watch("batched");
  b.per_statement = true;
  start("filtered, batched", {f, b});

  run("INSERT INTO filtered VALUES (1, 'a', 'x')");
  run("UPDATE filtered SET body = 'y'");   // not a watched change
  run("UPDATE filtered SET title = 'b'");  // sent, with id and title only
  run("DELETE FROM filtered");             // not a watched op
  run("INSERT INTO batched VALUES (1, 1)");
  run("INSERT INTO batched SELECT g, g FROM generate_series(2, 4) AS g");
  run("UPDATE batched SET n = n + 1 WHERE id <= 2");
  run("DELETE FROM batched WHERE id = 4");
  auto wal = read_slot();
  ASSERT_EQ(notified.size(), 6u);
  ASSERT_EQ(wal.size(), notified.size());
  for (std::size_t i = 0; i < wal.size(); ++i) {
    SCOPED_TRACE("change " + std::to_string(i));
    EXPECT_EQ(without_at(wal[i].payload), without_at(notified[i]));
  }
  EXPECT_NE(wal[1].payload.find(R"("new":{"id": 1, "title": "b"},"old":{"id": 1, "title": "a"})"),
            std::string::npos);
  EXPECT_NE(wal[3].payload.find(R"("parts":1,"rows":[{"new":{"n": 2, "id": 2}},)"),
            std::string::npos)
      << wal[3].payload;
}
