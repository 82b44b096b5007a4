#include "pg/WalSource.hpp"

#include <algorithm>

#include "pg/ConnInfo.hpp"
#include "pg/WalSourceImpl.hpp"

namespace pgfanout::pg {

using namespace std::chrono_literals;

namespace {

// Status updates: checked this often, sent when the position moved or status_interval passed.
constexpr auto kStatusTick = 1s;
// Events of one transaction acknowledged together (one completion) at most; a chunk also ends
// at the commit, when reading pauses and after each read.
constexpr std::size_t kChunkEvents = 256;

}  // namespace

void WalSource::Impl::stream_ready() {
  run = std::make_shared<Run>();
  staged_gauge.set(0);
  decoder.reset();
  // Values are decoded from their text output: the walsender's session must print them as
  // the decoder reads them (and as to_jsonb prints them).
  auto weak_self = weak_from_this();
  std::string settings =
      "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
      "SET extra_float_digits = 1; SET bytea_output = 'hex'";
  // With streaming, a transaction larger than this is sent while it runs; without, the server's
  // own setting says when the walsender spills to its disk.
  if (streams()) {
    settings += "; SET logical_decoding_work_mem = '" +
                std::to_string(std::max<std::size_t>(wal.decoding_work_mem / 1024, 64)) + "kB'";
  }
  stream->query(settings, {}, [weak_self](PgResult&& r) {
    auto s = weak_self.lock();
    // Values decoded in other formats would be wrong, not just late: no streaming then.
    if (s && !r.ok && !r.error.empty()) {
      s->stream->fail("error", "setting the stream's output formats failed: " + r.error);
    }
  });
  std::string command = "START_REPLICATION SLOT " + quote_ident(wal.slot) + " LOGICAL " +
                        format_lsn(confirmed) + " (" + stream_options() + ")";
  auto weak = weak_from_this();
  PgConnection::CopyHandlers copy;
  copy.on_data = [weak](std::string_view data) {
    auto s = weak.lock();
    return s ? s->on_data(data) : false;
  };
  copy.on_batch_end = [weak] {
    auto s = weak.lock();
    if (!s) return;
    s->close_chunk();
    s->sink.on_batch_end(s->self);
  };
  stream->start_copy_both(command, std::move(copy), [weak](PgResult&& r) {
    auto s = weak.lock();
    if (!s) return;
    if (!r.ok) {
      s->start_failed(r);
      return;
    }
    s->stream->confirm();
    s->streaming = true;
    s->state.last_error.clear();
    bool first = !s->ever_streamed;
    s->ever_streamed = true;
    spdlog::info("WAL source: streaming from slot {} at {}", s->wal.slot, format_lsn(s->confirmed));
    s->arm_status_timer();
    s->sink.on_connected(s->self, first, false);
  });
}

void WalSource::Impl::start_failed(const PgResult& r) {
  state.last_error = r.error;
  if (r.sqlstate == "55006") {
    // Another connection streams from this slot: wait for it to go away (standby).
    stream->fail("slot_in_use",
                 "the replication slot " + wal.slot +
                     " is in use by another connection (another pgfanout instance with the same "
                     "wal.slot?); waiting to take over");
    return;
  }
  if (r.sqlstate == "42704" || r.sqlstate == "55000") {
    // Missing, or invalidated: the monitor decides (and re-creates it).
    stream->stop();
    check_slot();
    return;
  }
  stream->fail("error", "START_REPLICATION failed: " + r.error);
}

void WalSource::Impl::stream_lost(const std::string& reason, const std::string& message,
                                  bool was_up) {
  state.last_error = message;
  bool was_streaming = streaming;
  streaming = false;
  run.reset();  // unsettled transactions are streamed again from the confirmed position
  staged_gauge.set(0);
  status_timer.cancel();
  restarts.inc();
  (void)reason;
  if (was_streaming || was_up) sink.on_disconnected(self, message);
}

bool WalSource::Impl::on_data(std::string_view data) {
  if (!run) return false;
  auto msg = parse_replication_message(data);
  if (auto* k = std::get_if<PrimaryKeepalive>(&msg)) {
    received = std::max(received, k->wal_end);
    // Everything up to wal_end has been sent; with nothing pending it is all done.
    if (run->txns.empty()) advance_to(k->wal_end);
    if (k->reply_requested) send_status();
    return true;
  }
  if (auto* e = std::get_if<ReplicationError>(&msg)) {
    decode_errors.inc();
    stream->fail("protocol", "bad replication message: " + e->message);
    return false;
  }
  const auto& x = std::get<XLogData>(msg);
  received = std::max(received, x.wal_start);
  events.clear();
  auto result = decoder.feed(x.payload, x.wal_start, events);
  auto keep = run;
  switch (result.kind) {
    case WalDecoder::Result::Begin:
      run->open = std::make_shared<Txn>();
      run->txns.push_back(run->open);
      break;
    case WalDecoder::Result::Commit:
      if (run->open) {
        run->open->end = result.commit_lsn;
        run->open->committed = true;
        run->open.reset();
      }
      break;
    case WalDecoder::Result::NeedTypes:
      need_types(result.types);
      break;
    case WalDecoder::Result::Skipped:  // an unusable app message: replaying it would not help
      decode_errors.inc();
      skipped_log.warn("wal:skipped", "WAL source: " + result.error + " at " +
                                          format_lsn(x.wal_start) + "; skipped");
      break;
    case WalDecoder::Result::Error:
      decode_errors.inc();
      stream->fail("protocol", "cannot decode the replication stream: " + result.error);
      return false;
    case WalDecoder::Result::StreamCommit:
      stream_commit(result);
      break;
    case WalDecoder::Result::StreamAbort:
      stream_abort(result);
      break;
    case WalDecoder::Result::Ok:
      break;
  }
  if (run != keep) return false;
  for (auto& ev : events) {
    if (ev.stream_xid != 0) {
      if (!stage(std::move(ev))) return false;
      continue;
    }
    // A change or a transactional message is acknowledged; other messages are not.
    if (run->open) {
      deliver_in_chunk(std::move(ev));
    } else {
      deliver(std::move(ev), nullptr);
    }
    if (run != keep) return false;  // the sink stopped or failed the stream
  }
  if (result.kind == WalDecoder::Result::Commit) {
    close_chunk();
    if (run != keep) return false;
    advance();
  }
  if (run != keep) return false;
  if (run->waiting_types || run->pending >= wal.max_pending || run->replay) {
    close_chunk();  // what it holds must be able to settle while reading waits
    if (run != keep) return false;
  }
  run->paused = run->waiting_types || run->pending >= wal.max_pending || run->replay;
  return !run->paused;
}

void WalSource::Impl::deliver(WalEvent&& ev, std::shared_ptr<EventCompletion> completion) {
  Notification n;
  n.channel = std::move(ev.channel);
  n.payload = std::move(ev.payload);
  n.lsn = ev.lsn;
  events_total.inc();
  sink.on_event(self, std::move(n), std::move(completion));
}

std::shared_ptr<EventCompletion> WalSource::Impl::completion_for(
    const std::shared_ptr<Txn>& txn, std::shared_ptr<const std::size_t> count) {
  ++txn->outstanding;
  std::weak_ptr<Impl> weak = weak_from_this();
  std::weak_ptr<Run> weak_run = run;
  return std::make_shared<EventCompletion>([weak, weak_run, txn, count](bool ok) {
    auto s = weak.lock();
    auto r = weak_run.lock();
    if (!s || !r || r != s->run) return;  // from a stream that is gone
    --txn->outstanding;
    r->pending -= *count;
    if (!ok) txn->failed = true;
    s->advance();
    s->maybe_resume();
  });
}

void WalSource::Impl::deliver_in_chunk(WalEvent&& ev) {
  auto& c = run->chunk;
  if (c.completion && (c.txn != run->open || *c.count >= kChunkEvents)) close_chunk();
  if (!c.completion) {
    c.txn = run->open;
    c.count = std::make_shared<std::size_t>(0);
    c.completion = completion_for(c.txn, c.count);
  }
  ++*c.count;
  ++run->pending;
  deliver(std::move(ev), c.completion);
}

void WalSource::Impl::close_chunk() {
  if (!run || !run->chunk.completion) return;
  // Settles now if every action of its events is already done: run may be replaced by then.
  auto completion = std::move(run->chunk.completion);
  run->chunk = Run::Chunk{};
}

void WalSource::Impl::advance() {
  if (!run) return;
  while (!run->txns.empty()) {
    auto& t = run->txns.front();
    if (!t->committed || t->outstanding > 0) break;
    if (t->failed) {
      restart_after_failure();
      return;
    }
    advance_to(t->end);
    run->txns.pop_front();
  }
}

void WalSource::Impl::advance_to(std::uint64_t lsn) {
  if (lsn <= confirmed) return;
  confirmed = lsn;
  confirmed_gauge.set(static_cast<double>(confirmed));
}

void WalSource::Impl::maybe_resume() {
  if (!run || !run->paused || run->waiting_types || run->pending > wal.max_pending / 2) return;
  if (run->replay && (run->in_replay || !replay_some())) return;
  if (!run || run->pending > wal.max_pending / 2) return;
  run->paused = false;
  stream->resume_copy();
}

void WalSource::Impl::restart_after_failure() {
  if (run->failed) return;
  run->failed = true;
  action_failures.inc();
  send_status();
  spdlog::warn("WAL source: an action failed; streaming again from {} in {} ms",
               format_lsn(confirmed), wal.retry_delay.count());
  stream->stop();
  streaming = false;
  run.reset();
  staged_gauge.set(0);
  auto weak = weak_from_this();
  retry_timer.expires_after(wal.retry_delay);
  retry_timer.async_wait([weak](boost::system::error_code ec) {
    auto s = weak.lock();
    if (!ec && s && !s->stopped) s->stream->start();
  });
}

void WalSource::Impl::arm_status_timer() {
  auto weak = weak_from_this();
  status_timer.expires_after(kStatusTick);
  status_timer.async_wait([weak](boost::system::error_code ec) {
    auto s = weak.lock();
    if (ec || !s || !s->streaming) return;
    auto now = std::chrono::steady_clock::now();
    if (s->confirmed != s->sent || now - s->sent_at >= s->wal.status_interval) s->send_status();
    s->arm_status_timer();
  });
}

void WalSource::Impl::send_status() {
  if (!streaming) return;
  StandbyStatus st;
  st.written = std::max(received, confirmed);
  st.flushed = confirmed;
  st.applied = confirmed;
  st.client_time = pg_now();
  if (stream->put_copy_data(build_standby_status(st))) {
    sent = confirmed;
    sent_at = std::chrono::steady_clock::now();
    status_updates.inc();
  }
}

void WalSource::Impl::stop() {
  stopped = true;
  if (streaming) send_status();
  streaming = false;
  run.reset();
  status_timer.cancel();
  monitor_timer.cancel();
  retry_timer.cancel();
  if (stream) stream->stop();
  if (monitor) monitor->stop();
}

WalSource::WalSource(asio::io_context& io, Metrics& metrics, PostgresConfig pg, WalConfig wal,
                     std::vector<WatchSpec> watch, EventSink& sink)
    : impl_(std::make_shared<Impl>(io, metrics, std::move(pg), std::move(wal), std::move(watch),
                                   sink, *this)) {
  impl_->init();
}

WalSource::~WalSource() {
  impl_->stop();
}

void WalSource::start(std::vector<std::string>) {
  impl_->stopped = false;
  spdlog::info("WAL source: slot {}, publication {}, PostgreSQL at {}", impl_->wal.slot,
               impl_->wal.publication, describe(impl_->pg.dsn));
  impl_->monitor->start();
}

void WalSource::set_channels(std::vector<std::string>) {}

void WalSource::stop() {
  impl_->stop();
}

bool WalSource::connected() const {
  return impl_->streaming;
}

WalSource::Status WalSource::status() const {
  Status s = impl_->state;
  s.streaming = impl_->streaming;
  s.confirmed = impl_->confirmed;
  return s;
}

std::string WalSource::Status::detail() const {
  if (slot_lost) return "replication slot lost (" + slot_status + "); re-creating it";
  if (!streaming) return last_error.empty() ? "connecting" : "not streaming: " + last_error;
  std::string d = "streaming";
  if (lag_bytes >= 0) d += ", " + std::to_string(lag_bytes) + " bytes behind";
  if (slot_losses > 0) {
    d += "; the slot was lost and re-created " + std::to_string(slot_losses) +
         " time(s) since start";
  }
  return d;
}

void WalSource::send_status() {
  impl_->send_status();
}

}  // namespace pgfanout::pg
