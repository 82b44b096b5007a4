// `pgfanout install` for the WAL source against the real PostgreSQL (wal_level = logical): the
// publication follows the `via: wal` entries, replica identities are set only where needed, the
// slot is created once, a table moved from `via: notify` loses its trigger, and `wal drop`
// removes slot and publication (not while a stream holds the slot).
#include <gtest/gtest.h>

#include "pg/Installer.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::pg {
namespace {

using test::BlockingPg;

struct WalInstallTest : ::testing::Test {
  void SetUp() override {
    pg.dsn = db.dsn();
    wal.enabled = true;
    wal.slot = "wal_install_" + db.name();
    BlockingPg(db.dsn()).exec(
        "CREATE TABLE users (id int PRIMARY KEY, username text);"
        "CREATE TABLE items (id int PRIMARY KEY, name text);"
        "CREATE TABLE nopk (a int);");
  }
  static WatchSpec spec(std::string table, std::string via) {
    WatchSpec w;
    w.table = std::move(table);
    w.ops = {"INSERT", "UPDATE", "DELETE"};
    w.via = std::move(via);
    return w;
  }
  std::string q(const std::string& sql) { return BlockingPg(db.dsn()).value(sql).value_or(""); }

  test::ScratchDatabase db{"walinstall"};
  PostgresConfig pg;
  WalConfig wal;
};

TEST_F(WalInstallTest, PublicationIdentitiesAndSlot) {
  // users: the rules read the old `id` only (its key): no FULL needed. items: `changed:`.
  WalPlan plan{&wal, {OldValues{"users", false, {"id"}}, OldValues{"items", true, {}}}};
  auto r = install(pg, {spec("users", "wal"), spec("items", "wal"), spec("nopk", "wal")}, plan);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(q("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables "
              "WHERE pubname = 'pgfanout'"),
            "items,nopk,users");
  EXPECT_EQ(q("SELECT pubinsert AND pubupdate AND pubdelete AND pubtruncate FROM pg_publication "
              "WHERE pubname = 'pgfanout'"),
            "t");
  // users has a primary key and needs no old values beyond it: left alone.
  EXPECT_EQ(q("SELECT relreplident FROM pg_class WHERE oid = 'users'::regclass"), "d");
  EXPECT_EQ(q("SELECT relreplident FROM pg_class WHERE oid = 'items'::regclass"), "f");
  EXPECT_EQ(q("SELECT relreplident FROM pg_class WHERE oid = 'nopk'::regclass"), "f");
  EXPECT_EQ(q("SELECT plugin FROM pg_replication_slots WHERE slot_name = '" + wal.slot + "'"),
            "pgoutput");
  // An UPDATE of the table without a key still works (it would fail without an identity).
  BlockingPg(db.dsn()).exec("INSERT INTO nopk VALUES (1); UPDATE nopk SET a = 2");

  // Again, with one table fewer: the publication follows, the slot is kept.
  auto again = install(pg, {spec("users", "wal"), spec("items", "wal")}, plan);
  ASSERT_TRUE(again.ok) << again.error;
  EXPECT_EQ(q("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables "
              "WHERE pubname = 'pgfanout'"),
            "items,users");
  EXPECT_EQ(q("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + wal.slot + "'"),
            "1");
  for (const auto& n : again.notices) EXPECT_EQ(n.find("created"), std::string::npos) << n;
}

TEST_F(WalInstallTest, OldValuesOfNonKeyColumnsNeedFullIdentity) {
  // `evict: user:{username}` reads the old username, which the default identity does not log.
  auto r = install(pg, {spec("users", "wal")},
                   WalPlan{&wal, {OldValues{"users", false, {"id", "username"}}}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(q("SELECT relreplident FROM pg_class WHERE oid = 'users'::regclass"), "f");
  bool named = false;
  for (const auto& n : r.notices) named = named || n.find("username") != std::string::npos;
  EXPECT_TRUE(named) << "the notice names the column";
}

TEST_F(WalInstallTest, MovingATableFromNotifyToWalRemovesItsTrigger) {
  ASSERT_TRUE(install(pg, {spec("users", "notify")}).ok);
  EXPECT_EQ(q("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'users'::regclass "
              "AND tgname LIKE 'pgfanout%'"),
            "1");
  auto r = install(pg, {spec("users", "wal")}, WalPlan{&wal, {}});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(q("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'users'::regclass "
              "AND tgname LIKE 'pgfanout%'"),
            "0");
}

TEST_F(WalInstallTest, ASlotOfAnotherPluginIsRefused) {
  BlockingPg(db.dsn()).exec("SELECT pg_create_logical_replication_slot('" + wal.slot +
                            "', 'test_decoding')");
  auto r = install(pg, {spec("users", "wal")}, WalPlan{&wal, {}});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("exists for another use"), std::string::npos) << r.error;
}

TEST_F(WalInstallTest, DropRemovesSlotAndPublicationButNotAnActiveSlot) {
  ASSERT_TRUE(install(pg, {spec("users", "wal")}, WalPlan{&wal, {}}).ok);
  // A replication connection streaming from the slot holds it.
  PGconn* stream = PQconnectdb((db.dsn() + " replication=database").c_str());
  ASSERT_EQ(PQstatus(stream), CONNECTION_OK) << PQerrorMessage(stream);
  std::string start = "START_REPLICATION SLOT " + wal.slot +
                      " LOGICAL 0/0 (proto_version '1', publication_names 'pgfanout')";
  PGresult* res = PQexec(stream, start.c_str());
  ASSERT_EQ(PQresultStatus(res), PGRES_COPY_BOTH) << PQerrorMessage(stream);
  PQclear(res);
  auto refused = drop_wal(pg, wal);
  EXPECT_FALSE(refused.ok);
  EXPECT_NE(refused.error.find("in use"), std::string::npos) << refused.error;
  PQfinish(stream);
  ASSERT_TRUE(test::wait_until([&] {
    return q("SELECT count(*) FROM pg_replication_slots WHERE active AND slot_name = '" + wal.slot +
             "'") == "0";
  }));
  auto dropped = drop_wal(pg, wal);
  ASSERT_TRUE(dropped.ok) << dropped.error;
  EXPECT_EQ(q("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + wal.slot + "'"),
            "0");
  EXPECT_EQ(q("SELECT count(*) FROM pg_publication WHERE pubname = 'pgfanout'"), "0");
}

}  // namespace
}  // namespace pgfanout::pg
