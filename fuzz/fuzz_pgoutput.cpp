// Fuzzes the WAL source's decoding: any bytes as a replication CopyData message, as a pgoutput
// message and as an LSN decode to a value or an error without a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "pg/PgOutput.hpp"
#include "pg/ReplicationProtocol.hpp"

using namespace pgfanout;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = pg::parse_replication_message(in);
  if (auto* x = std::get_if<pg::XLogData>(&r)) (void)pg::pgoutput::decode_pgoutput(x->payload);
  (void)pg::pgoutput::decode_pgoutput(in);
  (void)pg::parse_lsn(in);
  return 0;
}
