// The pure core of the WAL source: the replication CopyData framing, pgoutput decoding, the
// conversion of text values into to_jsonb's JSON, and the decoder that turns row changes into
// the trigger generators' envelope. Messages are built by hand, byte for byte.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pg/PgOutput.hpp"
#include "pg/ReplicationProtocol.hpp"
#include "pg/WalDecoder.hpp"

using namespace pgfanout::pg;

namespace {

// Builds protocol messages: big-endian integers, NUL-terminated strings.
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

}  // namespace

TEST(ReplicationProtocol, LsnTextRoundTrips) {
  EXPECT_EQ(format_lsn(0x16B374D848ULL), "16/B374D848");
  EXPECT_EQ(format_lsn(0), "0/0");
  EXPECT_EQ(parse_lsn("16/B374D848"), 0x16B374D848ULL);
  EXPECT_EQ(parse_lsn("ffffffff/ffffffff"), ~0ULL);
  EXPECT_FALSE(parse_lsn("16B374D848"));
  EXPECT_FALSE(parse_lsn("/1"));
  EXPECT_FALSE(parse_lsn("1/"));
  EXPECT_FALSE(parse_lsn("1/123456789"));
  EXPECT_FALSE(parse_lsn("1/x"));
}

TEST(ReplicationProtocol, ParsesXLogData) {
  Bytes b;
  b.c('w').u64(0x100).u64(0x200).u64(12345);
  b.s += "Bpayload";
  auto m = parse_replication_message(b.s);
  auto* x = std::get_if<XLogData>(&m);
  ASSERT_TRUE(x);
  EXPECT_EQ(x->wal_start, 0x100u);
  EXPECT_EQ(x->wal_end, 0x200u);
  EXPECT_EQ(x->send_time, 12345);
  EXPECT_EQ(x->payload, "Bpayload");
}

TEST(ReplicationProtocol, ParsesKeepalive) {
  Bytes b;
  b.c('k').u64(0xABCDEF).u64(99).u8(1);
  auto m = parse_replication_message(b.s);
  auto* k = std::get_if<PrimaryKeepalive>(&m);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->wal_end, 0xABCDEFu);
  EXPECT_EQ(k->send_time, 99);
  EXPECT_TRUE(k->reply_requested);
}

TEST(ReplicationProtocol, ShortOrUnknownMessagesAreErrors) {
  Bytes w;
  w.c('w').u64(1).u64(2).u32(0);
  EXPECT_TRUE(std::holds_alternative<ReplicationError>(parse_replication_message(w.s)));
  Bytes k;
  k.c('k').u64(1).u64(2);
  EXPECT_TRUE(std::holds_alternative<ReplicationError>(parse_replication_message(k.s)));
  EXPECT_TRUE(std::holds_alternative<ReplicationError>(parse_replication_message("")));
  EXPECT_TRUE(std::holds_alternative<ReplicationError>(parse_replication_message("zzz")));
}

TEST(ReplicationProtocol, BuildsStandbyStatus) {
  StandbyStatus st{0x1122334455667788ULL, 2, 3, 4, true};
  auto s = build_standby_status(st);
  Bytes want;
  want.c('r').u64(0x1122334455667788ULL).u64(2).u64(3).u64(4).u8(1);
  EXPECT_EQ(s, want.s);
  EXPECT_EQ(s.size(), 34u);
  EXPECT_GT(pg_now(), 0);
}

TEST(PgOutput, DecodesBeginCommitOrigin) {
  Bytes b;
  b.c('B').u64(0x500).u64(777).u32(42);
  auto m = pgoutput::decode_pgoutput(b.s);
  auto* begin = std::get_if<pgoutput::Begin>(&m);
  ASSERT_TRUE(begin);
  EXPECT_EQ(begin->final_lsn, 0x500u);
  EXPECT_EQ(begin->commit_time, 777);
  EXPECT_EQ(begin->xid, 42u);

  Bytes c;
  c.c('C').u8(0).u64(0x500).u64(0x530).u64(777);
  m = pgoutput::decode_pgoutput(c.s);
  auto* commit = std::get_if<pgoutput::Commit>(&m);
  ASSERT_TRUE(commit);
  EXPECT_EQ(commit->commit_lsn, 0x500u);
  EXPECT_EQ(commit->end_lsn, 0x530u);

  Bytes o;
  o.c('O').u64(9).str("upstream");
  m = pgoutput::decode_pgoutput(o.s);
  ASSERT_TRUE(std::holds_alternative<pgoutput::Origin>(m));
  EXPECT_EQ(std::get<pgoutput::Origin>(m).name, "upstream");
}

TEST(PgOutput, DecodesRelationAndType) {
  Bytes r;
  r.c('R').u32(16400).str("public").str("users").c('d').u16(2);
  r.u8(1).str("id").u32(23).u32(0xffffffff);
  r.u8(0).str("name").u32(25).u32(0xffffffff);
  auto m = pgoutput::decode_pgoutput(r.s);
  auto* rel = std::get_if<pgoutput::Relation>(&m);
  ASSERT_TRUE(rel);
  EXPECT_EQ(rel->oid, 16400u);
  EXPECT_EQ(rel->schema, "public");
  EXPECT_EQ(rel->name, "users");
  ASSERT_EQ(rel->columns.size(), 2u);
  EXPECT_TRUE(rel->columns[0].key);
  EXPECT_EQ(rel->columns[1].name, "name");
  EXPECT_EQ(rel->columns[1].type, 25u);
  EXPECT_EQ(rel->columns[1].typmod, -1);

  Bytes y;
  y.c('Y').u32(17000).str("public").str("mood");
  m = pgoutput::decode_pgoutput(y.s);
  ASSERT_TRUE(std::holds_alternative<pgoutput::Type>(m));
  EXPECT_EQ(std::get<pgoutput::Type>(m).name, "mood");
}

TEST(PgOutput, DecodesRowChanges) {
  Bytes i;
  i.c('I').u32(1).c('N').u16(3).text("7").c('n').c('u');
  auto m = pgoutput::decode_pgoutput(i.s);
  auto* ins = std::get_if<pgoutput::Insert>(&m);
  ASSERT_TRUE(ins);
  ASSERT_EQ(ins->new_tuple.size(), 3u);
  EXPECT_EQ(ins->new_tuple[0].kind, 't');
  EXPECT_EQ(ins->new_tuple[0].text, "7");
  EXPECT_EQ(ins->new_tuple[1].kind, 'n');
  EXPECT_EQ(ins->new_tuple[2].kind, 'u');

  Bytes u;
  u.c('U').u32(1).c('N').u16(1).text("x");
  m = pgoutput::decode_pgoutput(u.s);
  ASSERT_TRUE(std::holds_alternative<pgoutput::Update>(m));
  EXPECT_EQ(std::get<pgoutput::Update>(m).old_kind, 0);

  for (char kind : {'K', 'O'}) {
    Bytes uo;
    uo.c('U').u32(1).c(kind).u16(1).text("old").c('N').u16(1).text("new");
    m = pgoutput::decode_pgoutput(uo.s);
    auto* up = std::get_if<pgoutput::Update>(&m);
    ASSERT_TRUE(up);
    EXPECT_EQ(up->old_kind, kind);
    EXPECT_EQ(up->old_tuple[0].text, "old");
    EXPECT_EQ(up->new_tuple[0].text, "new");
  }

  Bytes d;
  d.c('D').u32(1).c('O').u16(1).text("gone");
  m = pgoutput::decode_pgoutput(d.s);
  ASSERT_TRUE(std::holds_alternative<pgoutput::Delete>(m));
  EXPECT_EQ(std::get<pgoutput::Delete>(m).old_tuple[0].text, "gone");

  Bytes t;
  t.c('T').u32(2).u8(1).u32(10).u32(11);
  m = pgoutput::decode_pgoutput(t.s);
  auto* tr = std::get_if<pgoutput::Truncate>(&m);
  ASSERT_TRUE(tr);
  EXPECT_EQ(tr->options, 1);
  EXPECT_EQ(tr->relations, (std::vector<pgoutput::Oid>{10, 11}));
}

TEST(PgOutput, DecodesLogicalMessage) {
  Bytes b;
  b.c('M').u8(1).u64(0x42).str("pgfanout").u32(9);
  b.s += "ch\n{\"x\":1}";
  b.s.resize(b.s.size() - 1);  // the content is 9 bytes: ch\n{"x":1
  auto m = pgoutput::decode_pgoutput(b.s);
  auto* msg = std::get_if<pgoutput::Message>(&m);
  ASSERT_TRUE(msg);
  EXPECT_TRUE(msg->transactional);
  EXPECT_EQ(msg->lsn, 0x42u);
  EXPECT_EQ(msg->prefix, "pgfanout");
  EXPECT_EQ(msg->content, "ch\n{\"x\":1");
}

TEST(PgOutput, MalformedInputIsAnError) {
  std::vector<std::string> full;
  full.push_back(Bytes().c('B').u64(1).u64(2).u32(3).s);
  full.push_back(Bytes().c('C').u8(0).u64(1).u64(2).u64(3).s);
  full.push_back(
      Bytes().c('R').u32(1).str("s").str("t").c('d').u16(1).u8(1).str("a").u32(23).u32(0).s);
  full.push_back(Bytes().c('I').u32(1).c('N').u16(2).text("abc").c('n').s);
  full.push_back(Bytes().c('U').u32(1).c('K').u16(1).text("a").c('N').u16(1).text("b").s);
  full.push_back(Bytes().c('D').u32(1).c('K').u16(1).text("a").s);
  full.push_back(Bytes().c('T').u32(1).u8(0).u32(5).s);
  full.push_back(Bytes().c('M').u8(0).u64(1).str("p").u32(2).c('x').c('y').s);
  for (const auto& msg : full) {
    ASSERT_FALSE(std::holds_alternative<pgoutput::DecodeError>(pgoutput::decode_pgoutput(msg)))
        << msg[0];
    // Every proper prefix is an error, and so is a trailing byte.
    for (std::size_t n = 0; n < msg.size(); ++n)
      EXPECT_TRUE(std::holds_alternative<pgoutput::DecodeError>(
          pgoutput::decode_pgoutput(std::string_view(msg).substr(0, n))))
          << msg[0] << " cut at " << n;
    EXPECT_TRUE(
        std::holds_alternative<pgoutput::DecodeError>(pgoutput::decode_pgoutput(msg + "x")));
  }
  EXPECT_TRUE(std::holds_alternative<pgoutput::DecodeError>(pgoutput::decode_pgoutput("Z")));
  // A value kind that is not n, u or t; counts larger than the message.
  EXPECT_TRUE(std::holds_alternative<pgoutput::DecodeError>(
      pgoutput::decode_pgoutput(Bytes().c('I').u32(1).c('N').u16(1).c('q').s)));
  EXPECT_TRUE(std::holds_alternative<pgoutput::DecodeError>(
      pgoutput::decode_pgoutput(Bytes().c('I').u32(1).c('N').u16(60000).s)));
  EXPECT_TRUE(std::holds_alternative<pgoutput::DecodeError>(
      pgoutput::decode_pgoutput(Bytes().c('T').u32(0xffffffff).u8(0).s)));
  EXPECT_TRUE(std::holds_alternative<pgoutput::DecodeError>(
      pgoutput::decode_pgoutput(Bytes().c('I').u32(1).c('N').u16(1).c('t').u32(0xffffffff).s)));
}

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
  ASSERT_TRUE(d.add_table_key_row({"public", "docs", "id"}));
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
