// Fuzzes the WAL source's decoding: any bytes as a replication CopyData message, as a pgoutput
// message and as an LSN decode to a value or an error without a crash, and a WalDecoder fed the
// input as a sequence of messages (split at each 0xff byte) sends events or reports an error.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "pg/PgOutput.hpp"
#include "pg/ReplicationProtocol.hpp"
#include "pg/WalDecoder.hpp"

using namespace pgfanout;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = pg::parse_replication_message(in);
  if (auto* x = std::get_if<pg::XLogData>(&r)) (void)pg::pgoutput::decode_pgoutput(x->payload);
  (void)pg::pgoutput::decode_pgoutput(in);
  (void)pg::parse_lsn(in);

  static const std::vector<pg::WatchSpec> watches = [] {
    pg::WatchSpec all, some;
    all.table = "public.t";
    all.via = "wal";
    some.table = "s.u";
    some.via = "wal";
    some.columns = {"a"};
    some.changed = {"b"};
    some.per_statement = true;
    return std::vector<pg::WatchSpec>{all, some};
  }();
  pg::WalDecoder decoder(watches);
  decoder.set_reference_xid(5ULL << 32);
  std::vector<pg::WalEvent> out;
  std::size_t start = 0;
  while (start <= in.size()) {
    auto end = in.find('\xff', start);
    if (end == std::string_view::npos) end = in.size();
    auto result = decoder.feed(in.substr(start, end - start), start, out);
    if (result.kind == pg::WalDecoder::Result::NeedTypes) {
      for (auto oid : result.types)
        decoder.types().add_row({std::to_string(oid), std::to_string(oid % 4 ? 25 : 1007), "x",
                                 oid % 3 ? "0" : "23", ",", "f", oid % 5 ? "f" : "t"});
    }
    start = end + 1;
  }
  return 0;
}
