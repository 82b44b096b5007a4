// WalSource: transactions streamed before their commit (pgoutput protocol 2, `streaming on`).
// The walsender sends a transaction larger than wal.decoding_work_mem in blocks while it runs;
// its events are decoded then and staged in a WalSpool (memory, then an unlinked file), and at
// its Stream Commit they get their tail (txid, commit time, LSN) and go to the actions as one
// transaction: the slot's position moves past it only when all of them completed, as for any
// other. A Stream Abort drops what it names. So the work left after a large commit is the
// actions, not the decoding.
#include <algorithm>
#include <cstdlib>

#include <boost/asio/post.hpp>

#include "pg/ConnInfo.hpp"
#include "pg/WalSourceImpl.hpp"

namespace pgfanout::pg {

namespace {

constexpr int kStreamingVersion = 140000;  // protocol 2 and `streaming`
constexpr std::size_t kReplayChunk = 256;  // events per acknowledgement when replaying
// Longest a replay runs before it lets the loop's other handlers (status updates, the hub, the
// other sources) run; the rest follows in a posted handler. As PgConnection's kNotifyTurn.
constexpr auto kReplayTurn = std::chrono::milliseconds(5);

std::string spool_dir_of(const WalConfig& wal) {
  if (!wal.spool_dir.empty()) return wal.spool_dir;
  const char* tmp = std::getenv("TMPDIR");
  return tmp && *tmp ? tmp : "/tmp";
}

}  // namespace

bool WalSource::Impl::streams() const {
  return wal.streaming && server_version >= kStreamingVersion;
}

std::string WalSource::Impl::stream_options() const {
  std::string o = streams() ? "proto_version '2', streaming 'on'" : "proto_version '1'";
  o += ", publication_names " + quote_literal(quote_ident(wal.publication)) + ", messages 'true'";
  return o;
}

bool WalSource::Impl::stage(WalEvent&& ev) {
  auto& spool = run->staged[ev.stream_xid];
  if (!run->spool_budget) {
    run->spool_budget = std::make_shared<WalSpool::Budget>(WalSpool::Budget{wal.spool_memory});
  }
  if (!spool) spool = std::make_unique<WalSpool>(spool_dir_of(wal), run->spool_budget);
  auto spilled = spool->spilled_bytes();
  std::string error;
  if (!spool->add(ev, error)) {
    spool_errors.inc();
    stream->fail("spool", "staging a streamed transaction failed (" + error +
                              "); streaming again from " + format_lsn(confirmed));
    return false;
  }
  spilled_total.inc(spool->spilled_bytes() - spilled);
  staged_gauge.add(1);
  return true;
}

void WalSource::Impl::stream_abort(const WalDecoder::Result& r) {
  auto it = run->staged.find(r.xid);
  if (r.xid == r.subxid) streamed_aborted.inc();
  if (it == run->staged.end()) return;
  auto before = static_cast<double>(it->second->events());
  if (r.xid == r.subxid) {
    run->staged.erase(it);
    staged_gauge.add(-before);
    return;
  }
  std::string error;
  if (!it->second->drop_subxact(r.subxid, error)) {
    spool_errors.inc();
    stream->fail("spool", "dropping a rolled-back subtransaction failed (" + error +
                              "); streaming again from " + format_lsn(confirmed));
    return;
  }
  staged_gauge.add(static_cast<double>(it->second->events()) - before);
}

void WalSource::Impl::stream_commit(const WalDecoder::Result& r) {
  auto txn = std::make_shared<Txn>();
  txn->end = r.commit_lsn;
  run->txns.push_back(txn);
  streamed_total.inc();
  auto it = run->staged.find(r.xid);
  if (it == run->staged.end()) {  // nothing in it for us: the position may move past it now
    txn->committed = true;
    advance();
    return;
  }
  run->replay = std::make_unique<Replay>(Replay{txn, std::move(it->second), r.txid, r.at});
  run->staged.erase(it);
  replay_some();
}

bool WalSource::Impl::replay_some() {
  auto keep = run;
  auto& replay = *keep->replay;
  keep->in_replay = true;
  std::vector<WalEvent> chunk;
  std::string error;
  bool more = true;
  bool yielded = false;
  const auto until = std::chrono::steady_clock::now() + kReplayTurn;
  while (more && run == keep && run->pending < wal.max_pending) {
    if (std::chrono::steady_clock::now() >= until) {
      yielded = true;
      break;
    }
    // Events are read and acknowledged in chunks: one completion settles a chunk.
    chunk.clear();
    const std::size_t room = std::min(kReplayChunk, wal.max_pending - run->pending);
    while (chunk.size() < room) {
      WalEvent ev;
      if (!replay.spool->next(ev, error)) {
        more = false;
        break;
      }
      if (ev.needs_tail) WalDecoder::append_tail(replay.txid, replay.at, ev.lsn, ev.payload);
      chunk.push_back(std::move(ev));
    }
    if (!error.empty()) break;
    if (chunk.empty()) break;
    staged_gauge.add(-static_cast<double>(chunk.size()));
    run->pending += chunk.size();
    auto completion = completion_for(replay.txn, std::make_shared<const std::size_t>(chunk.size()));
    for (auto& ev : chunk) {
      deliver(std::move(ev), completion);
      if (run != keep) break;  // the sink stopped or failed the stream
    }
    completion.reset();
  }
  keep->in_replay = false;
  if (run != keep) return false;
  sink.on_batch_end(self);  // executors send what they coalesced
  if (run != keep) return false;
  if (!error.empty()) {
    spool_errors.inc();
    stream->fail("spool", "reading a streamed transaction back failed (" + error +
                              "); streaming again from " + format_lsn(confirmed));
    return false;
  }
  if (more) {
    // Paused by max_pending: a settling completion goes on (maybe_resume). Out of time: a
    // posted handler does the same.
    if (yielded) {
      std::weak_ptr<Impl> weak = weak_from_this();
      std::weak_ptr<Run> weak_run = keep;
      asio::post(io, [weak, weak_run] {
        auto s = weak.lock();
        if (s && weak_run.lock() == s->run) s->maybe_resume();
      });
    }
    return false;
  }
  replay.txn->committed = true;
  keep->replay.reset();
  advance();
  return true;
}

}  // namespace pgfanout::pg
