// pg::WalDecoder: pgoutput messages built by hand into the trigger generators' envelope and app
// events (the same against PostgreSQL: tests/integration/wal_envelope_pgtest.cpp).
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "pg/WalDecoder.hpp"
#include "support/WireBytes.hpp"

using namespace pgfanout::pg;
using pgfanout::test::Bytes;

namespace {

// A watched table public.docs (id int4 key, title text, body text, tags int4[]) and the
// messages of its changes.
std::string relation_msg(std::uint32_t oid, char identity, std::uint32_t tags_type = 1007) {
  Bytes r;
  r.c('R').u32(oid).str("public").str("docs").c(identity).u16(4);
  r.u8(1).str("id").u32(23).u32(0xffffffff);
  r.u8(identity == 'f').str("title").u32(25).u32(0xffffffff);
  r.u8(identity == 'f').str("body").u32(25).u32(0xffffffff);
  r.u8(identity == 'f').str("tags").u32(tags_type).u32(0xffffffff);
  return r.s;
}
std::string begin_msg(std::uint32_t xid) {
  // 2026-11-30 14:42:03.123456 UTC in microseconds since 2000-01-01.
  return Bytes().c('B').u64(0x900).u64(849'364'923'123'456LL).u32(xid).s;
}
std::string commit_msg() {
  return Bytes().c('C').u8(0).u64(0x900).u64(0x930).u64(1).s;
}

WatchSpec docs_watch() {
  WatchSpec w;
  w.table = "public.docs";
  w.channel = "docs_changed";
  w.via = "wal";
  return w;
}

struct Fed {
  std::vector<WalEvent> events;
  WalDecoder::Result last;
};

Fed feed_all(WalDecoder& d, const std::vector<std::string>& msgs) {
  Fed f;
  for (const auto& m : msgs) {
    f.last = d.feed(m, 0x16B3748, f.events);
    EXPECT_NE(f.last.kind, WalDecoder::Result::Error) << f.last.error;
  }
  return f;
}

}  // namespace

TEST(WalDecoder, WidensXidAroundTheReference) {
  EXPECT_EQ(WalDecoder::widen_xid(1234, 1000), 1234u);
  const std::uint64_t epoch3 = 3ULL << 32;
  EXPECT_EQ(WalDecoder::widen_xid(5, epoch3 + 10), epoch3 + 5);
  // Just before a wraparound the reference is in the old epoch, the xid in the next.
  EXPECT_EQ(WalDecoder::widen_xid(3, epoch3 - 2), epoch3 + 3);
  // An older transaction of the previous epoch.
  EXPECT_EQ(WalDecoder::widen_xid(0xfffffff0u, epoch3 + 4), epoch3 - 16);
  EXPECT_EQ(WalDecoder::widen_xid(0xfffffff0u, 5), 0xfffffff0u);
}

TEST(WalDecoder, FormatsCommitTimeAsTheTrigger) {
  EXPECT_EQ(WalDecoder::format_at(0), "2000-01-01T00:00:00.000Z");
  EXPECT_EQ(WalDecoder::format_at(849'364'923'123'456LL), "2026-11-30T14:42:03.123Z");
  EXPECT_EQ(WalDecoder::format_at(-1), "1999-12-31T23:59:59.999Z");
  // Out of range (a malformed stream, found by fuzz_pgoutput): a date, no overflow.
  auto far = WalDecoder::format_at(std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(far.back(), 'Z') << far;
  EXPECT_EQ(
      WalDecoder::format_at(std::numeric_limits<std::int64_t>::max()),
      WalDecoder::format_at(std::numeric_limits<std::int64_t>::max() - 946'684'800'000'000LL));
}

TEST(WalDecoder, RowChangesBecomeTheEnvelope) {
  WalDecoder d({docs_watch()});
  d.set_reference_xid((2ULL << 32) + 100);
  auto f = feed_all(d, {relation_msg(1, 'd'), begin_msg(90)});
  EXPECT_EQ(f.last.kind, WalDecoder::Result::Begin);
  f = feed_all(
      d, {Bytes().c('I').u32(1).c('N').u16(4).text("7").text("T").c('n').text("{1,2}").s,
          Bytes().c('U').u32(1).c('N').u16(4).text("7").text("T2").c('u').c('n').s,
          Bytes().c('D').u32(1).c('K').u16(4).text("7").c('n').c('n').c('n').s, commit_msg()});
  EXPECT_EQ(f.last.kind, WalDecoder::Result::Commit);
  EXPECT_EQ(f.last.commit_lsn, 0x930u);
  ASSERT_EQ(f.events.size(), 3u);
  const std::string tail =
      R"(,"txid":"8589934682","at":"2026-11-30T14:42:03.123Z","lsn":"0/16B3748"})";
  EXPECT_EQ(f.events[0].channel, "docs_changed");
  EXPECT_EQ(
      f.events[0].payload,
      R"({"v":1,"op":"INSERT","schema":"public","table":"docs","new":{"id": 7, "body": null, "tags": [1, 2], "title": "T"})" +
          tail);
  EXPECT_EQ(
      f.events[1].payload,
      R"({"v":1,"op":"UPDATE","schema":"public","table":"docs","new":{"id": 7, "tags": null, "title": "T2"},"old":{"id": 7},"unchanged_toast":["body"])" +
          tail);
  EXPECT_EQ(f.events[2].payload,
            R"({"v":1,"op":"DELETE","schema":"public","table":"docs","old":{"id": 7})" + tail);
  EXPECT_EQ(f.events[2].lsn, 0x16B3748u);
}

TEST(WalDecoder, FullOldRowFillsToastAndTestsChanged) {
  auto w = docs_watch();
  w.columns = {"title"};
  w.changed = {"title"};
  WalDecoder d({w});
  std::vector<WalEvent> out;
  feed_all(d, {relation_msg(1, 'f'), begin_msg(5)});
  // REPLICA IDENTITY FULL marks every column as key; the real key comes from the catalog.
  d.begin_table_keys();
  ASSERT_TRUE(d.add_table_key_row({"public", "docs", "id"}));
  d.end_table_keys();
  feed_all(d, {relation_msg(1, 'f')});
  // body alone changed: not sent. title changed, body unchanged TOAST: sent, body from old.
  auto f = feed_all(d, {Bytes()
                            .c('U')
                            .u32(1)
                            .c('O')
                            .u16(4)
                            .text("1")
                            .text("a")
                            .text("B")
                            .c('n')
                            .c('N')
                            .u16(4)
                            .text("1")
                            .text("a")
                            .text("C")
                            .c('n')
                            .s,
                        Bytes()
                            .c('U')
                            .u32(1)
                            .c('O')
                            .u16(4)
                            .text("1")
                            .text("a")
                            .text("B")
                            .c('n')
                            .c('N')
                            .u16(4)
                            .text("1")
                            .text("b")
                            .c('u')
                            .c('n')
                            .s});
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_NE(
      f.events[0].payload.find(R"("new":{"id": 1, "title": "b"},"old":{"id": 1, "title": "a"})"),
      std::string::npos)
      << f.events[0].payload;
  EXPECT_EQ(f.events[0].payload.find("unchanged_toast"), std::string::npos);
}

TEST(WalDecoder, OpsFilterAndUnwatchedTables) {
  auto w = docs_watch();
  w.ops = {"DELETE"};
  WatchSpec notify = w;
  notify.table = "other";
  notify.via = "notify";
  WalDecoder d({w, notify});
  auto other = Bytes()
                   .c('R')
                   .u32(2)
                   .str("public")
                   .str("other")
                   .c('d')
                   .u16(1)
                   .u8(1)
                   .str("id")
                   .u32(23)
                   .u32(0)
                   .s;
  auto f = feed_all(d, {relation_msg(1, 'd'), other, begin_msg(5),
                        Bytes().c('I').u32(1).c('N').u16(4).text("7").c('n').c('n').c('n').s,
                        Bytes().c('I').u32(2).c('N').u16(1).text("7").s, commit_msg()});
  EXPECT_TRUE(f.events.empty());
}

TEST(WalDecoder, PerStatementGroupsRowsIntoParts) {
  auto w = docs_watch();
  w.per_statement = true;
  w.columns = {"id"};
  WalDecoder d({w});
  std::vector<std::string> msgs = {relation_msg(1, 'd'), begin_msg(5)};
  for (int i = 0; i < 3; ++i)
    msgs.push_back(
        Bytes().c('I').u32(1).c('N').u16(4).text(std::to_string(i)).c('n').c('n').c('n').s);
  msgs.push_back(Bytes().c('D').u32(1).c('K').u16(4).text("9").c('n').c('n').c('n').s);
  msgs.push_back(commit_msg());
  auto f = feed_all(d, msgs);
  ASSERT_EQ(f.events.size(), 2u);
  EXPECT_NE(
      f.events[0].payload.find(
          R"("op":"INSERT","schema":"public","table":"docs","part":1,"parts":1,"rows":[{"new":{"id": 0}},{"new":{"id": 1}},{"new":{"id": 2}}],"txid")"),
      std::string::npos)
      << f.events[0].payload;
  EXPECT_NE(f.events[1].payload.find(R"("rows":[{"old":{"id": 9}}])"), std::string::npos);
}

TEST(WalDecoder, NeedsTypesItDoesNotKnow) {
  WalDecoder d({docs_watch()});
  std::vector<WalEvent> out;
  auto r = d.feed(relation_msg(1, 'd', 16600), 1, out);
  ASSERT_EQ(r.kind, WalDecoder::Result::NeedTypes);
  EXPECT_EQ(r.types, (std::vector<TypeOid>{16600}));
  // The caller loads them; values are converted with what the catalog knows when rows arrive.
  ASSERT_TRUE(d.types().add_row({"16600", "16600", "_mood", "16601", ",", "f", "f"}));
  ASSERT_TRUE(d.types().add_row({"16601", "16601", "mood", "0", ",", "f", "f"}));
  auto f =
      feed_all(d, {begin_msg(1),
                   Bytes().c('I').u32(1).c('N').u16(4).text("1").c('n').c('n').text("{ok,sad}").s});
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_NE(f.events[0].payload.find(R"("tags": ["ok", "sad"])"), std::string::npos);
}

TEST(WalDecoder, AppEventsFromLogicalMessages) {
  WalDecoder d({});
  auto msg = [](std::string_view prefix, std::string_view content, bool tx) {
    Bytes b;
    b.c('M').u8(tx).u64(0x77).str(prefix).u32(static_cast<std::uint32_t>(content.size()));
    b.s += content;
    return b.s;
  };
  auto f =
      feed_all(d, {msg("pgfanout", "chan\n{\"x\":1}\nmore", false), msg("other", "c\nx", false),
                   begin_msg(3), msg("pgfanout", "orders\n", true), commit_msg()});
  ASSERT_EQ(f.events.size(), 2u);
  EXPECT_EQ(f.events[0].channel, "chan");
  EXPECT_EQ(f.events[0].payload, "{\"x\":1}\nmore");
  EXPECT_EQ(f.events[1].channel, "orders");
  EXPECT_EQ(f.events[1].payload, "");
  // A message without a channel cannot be an event: skipped (the stream goes on), not an error
  // that would stop the slot at it for good.
  std::vector<WalEvent> out;
  auto r = d.feed(msg("pgfanout", "\n{\"x\":1}", false), 9, out);
  EXPECT_EQ(r.kind, WalDecoder::Result::Skipped);
  EXPECT_NE(r.error.find("without a channel"), std::string::npos) << r.error;
  EXPECT_TRUE(out.empty());
}

TEST(WalDecoder, ReloadedTableKeysReplaceTheOldOnes) {
  auto w = docs_watch();
  w.columns = {"id", "title"};
  WalDecoder d({w});
  d.begin_table_keys();
  ASSERT_TRUE(d.add_table_key_row({"public", "docs", "id"}));
  ASSERT_TRUE(d.add_table_key_row({"public", "docs", "title"}));
  d.end_table_keys();
  // A later load without `title` in the key: only `id` is key now (stale keys used to stay).
  d.begin_table_keys();
  ASSERT_TRUE(d.add_table_key_row({"public", "docs", "id"}));
  d.end_table_keys();
  EXPECT_EQ(d.table_key_columns("public", "docs"), (std::vector<std::string>{"id"}));
}

TEST(WalDecoder, ProtocolViolationsAreErrors) {
  WalDecoder d({docs_watch()});
  std::vector<WalEvent> out;
  // A row of a relation never announced; a row of the wrong width; garbage.
  EXPECT_EQ(d.feed(Bytes().c('I').u32(1).c('N').u16(1).text("1").s, 1, out).kind,
            WalDecoder::Result::Error);
  d.feed(relation_msg(1, 'd'), 1, out);
  EXPECT_EQ(d.feed(Bytes().c('I').u32(1).c('N').u16(1).text("1").s, 1, out).kind,
            WalDecoder::Result::Error);
  EXPECT_EQ(d.feed("\x01garbage", 1, out).kind, WalDecoder::Result::Error);
  d.reset();
  EXPECT_EQ(
      d.feed(Bytes().c('I').u32(1).c('N').u16(4).text("1").c('n').c('n').c('n').s, 1, out).kind,
      WalDecoder::Result::Error);
  EXPECT_TRUE(out.empty());
}

// Protocol 2: a transaction streamed in blocks before its commit. Its events come out marked
// with its xid and subxid and without their tail, which append_tail() makes from the Stream
// Commit's txid and commit time: the same envelope as the transaction sent whole.
TEST(WalDecoder, StreamedTransactionsAreStagedWithoutTheirTail) {
  WalDecoder d({docs_watch()});
  d.set_reference_xid((2ULL << 32) + 100);
  auto streamed = [](std::uint32_t xid, const std::string& msg) {
    return msg.substr(0, 1) + Bytes().u32(xid).s + msg.substr(1);
  };
  auto insert = [](const char* id) {
    return Bytes().c('I').u32(1).c('N').u16(4).text(id).text("T").c('n').text("{1,2}").s;
  };
  auto f = feed_all(d, {Bytes().c('S').u32(90).u8(1).s, streamed(90, relation_msg(1, 'd')),
                        streamed(90, insert("7")), streamed(91, insert("8")), Bytes().c('E').s});
  ASSERT_EQ(f.events.size(), 2u);
  EXPECT_EQ(f.events[0].stream_xid, 90u);
  EXPECT_EQ(f.events[0].subxid, 90u);
  EXPECT_EQ(f.events[1].subxid, 91u);
  EXPECT_TRUE(f.events[0].needs_tail);
  auto msg = feed_all(d, {Bytes().c('S').u32(90).u8(0).s,
                          Bytes().c('M').u32(90).u8(1).u64(5).str("pgfanout").u32(5).s + "ch\nhi",
                          Bytes().c('E').s});
  ASSERT_EQ(msg.events.size(), 1u);
  EXPECT_EQ(msg.events[0].payload, "hi");
  EXPECT_EQ(msg.events[0].stream_xid, 90u);
  EXPECT_FALSE(msg.events[0].needs_tail) << "an app event's payload is the app's";
  const std::string head =
      R"({"v":1,"op":"INSERT","schema":"public","table":"docs","new":{"id": 7, "body": null, "tags": [1, 2], "title": "T"})";
  EXPECT_EQ(f.events[0].payload, head) << "no tail before the commit";

  // A small transaction sent whole between the blocks is unaffected.
  auto whole = feed_all(d, {begin_msg(92), insert("9"), commit_msg()});
  ASSERT_EQ(whole.events.size(), 1u);
  EXPECT_EQ(whole.events[0].stream_xid, 0u);
  EXPECT_EQ(whole.events[0].payload.back(), '}');

  auto abort = feed_all(d, {Bytes().c('A').u32(90).u32(91).s});
  EXPECT_EQ(abort.last.kind, WalDecoder::Result::StreamAbort);
  EXPECT_EQ(abort.last.xid, 90u);
  EXPECT_EQ(abort.last.subxid, 91u);

  auto c = feed_all(
      d, {Bytes().c('c').u32(90).u8(0).u64(0x900).u64(0x930).u64(849'364'923'123'456LL).s});
  EXPECT_EQ(c.last.kind, WalDecoder::Result::StreamCommit);
  EXPECT_EQ(c.last.commit_lsn, 0x930u);
  EXPECT_EQ(c.last.txid, "8589934682");
  EXPECT_EQ(c.last.at, "2026-11-30T14:42:03.123Z");
  std::string completed = f.events[0].payload;
  WalDecoder::append_tail(c.last.txid, c.last.at, f.events[0].lsn, completed);
  EXPECT_EQ(completed,
            head + R"(,"txid":"8589934682","at":"2026-11-30T14:42:03.123Z","lsn":"0/16B3748"})");
  std::string longest;
  WalDecoder::append_tail("18446744073709551615", "2026-11-30T14:42:03.123Z", ~0ULL, longest);
  EXPECT_LE(longest.size(), WalDecoder::kMaxTailBytes);
}

TEST(WalDecoder, StreamProtocolViolationsAreErrors) {
  WalDecoder d({docs_watch()});
  std::vector<WalEvent> out;
  EXPECT_EQ(d.feed(Bytes().c('E').s, 1, out).kind, WalDecoder::Result::Error);
  EXPECT_EQ(d.feed(Bytes().c('c').u32(5).u8(0).u64(1).u64(2).u64(3).s, 1, out).kind,
            WalDecoder::Result::Error)
      << "a commit of a transaction never streamed";
  EXPECT_EQ(d.feed(Bytes().c('S').u32(5).u8(1).s, 1, out).kind, WalDecoder::Result::Ok);
  EXPECT_EQ(d.feed(Bytes().c('S').u32(6).u8(1).s, 1, out).kind, WalDecoder::Result::Error)
      << "a block inside a block";
  d.reset();
  EXPECT_EQ(d.feed(Bytes().c('S').u32(5).u8(1).s, 1, out).kind, WalDecoder::Result::Ok);
  EXPECT_EQ(d.feed(Bytes().c('I').u32(5).s, 1, out).kind, WalDecoder::Result::Error)
      << "a truncated streamed change";
}
