// The WAL source's wire formats: the replication CopyData framing and pgoutput decoding, on
// messages built by hand, byte for byte. The decoder on top is in wal_decoder_test.cpp.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pg/PgOutput.hpp"
#include "pg/ReplicationProtocol.hpp"
#include "support/WireBytes.hpp"

using namespace pgfanout::pg;

using pgfanout::test::Bytes;

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

TEST(PgOutput, DecodesProtocolTwoStreamMessages) {
  auto m = pgoutput::decode_pgoutput(Bytes().c('S').u32(77).u8(1).s);
  auto* st = std::get_if<pgoutput::StreamStart>(&m);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->xid, 77u);
  EXPECT_TRUE(st->first_segment);
  m = pgoutput::decode_pgoutput(Bytes().c('E').s);
  EXPECT_TRUE(std::holds_alternative<pgoutput::StreamStop>(m));
  m = pgoutput::decode_pgoutput(Bytes().c('c').u32(77).u8(0).u64(0x10).u64(0x20).u64(5).s);
  auto* c = std::get_if<pgoutput::StreamCommit>(&m);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->xid, 77u);
  EXPECT_EQ(c->commit_lsn, 0x10u);
  EXPECT_EQ(c->end_lsn, 0x20u);
  EXPECT_EQ(c->commit_time, 5);
  m = pgoutput::decode_pgoutput(Bytes().c('A').u32(77).u32(78).s);
  auto* a = std::get_if<pgoutput::StreamAbort>(&m);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->subxid, 78u);
  // Inside a block, changes carry their xid first.
  std::uint32_t xid = 0;
  m = pgoutput::decode_pgoutput(Bytes().c('I').u32(78).u32(9).c('N').u16(1).text("x").s, true,
                                &xid);
  auto* ins = std::get_if<pgoutput::Insert>(&m);
  ASSERT_TRUE(ins);
  EXPECT_EQ(xid, 78u);
  EXPECT_EQ(ins->relation, 9u);
  m = pgoutput::decode_pgoutput(Bytes().c('M').u32(78).u8(1).u64(3).str("p").u32(1).c('x').s, true,
                                &xid);
  ASSERT_TRUE(std::holds_alternative<pgoutput::Message>(m));
  // Short or with bytes left over: errors.
  EXPECT_TRUE(std::holds_alternative<pgoutput::DecodeError>(
      pgoutput::decode_pgoutput(Bytes().c('c').u32(1).s)));
  EXPECT_TRUE(std::holds_alternative<pgoutput::DecodeError>(
      pgoutput::decode_pgoutput(Bytes().c('E').u8(0).s)));
  EXPECT_TRUE(std::holds_alternative<pgoutput::DecodeError>(
      pgoutput::decode_pgoutput(Bytes().c('I').u16(1).s, true)));
}
