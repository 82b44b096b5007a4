// WalSource's monitor connection: what the decoder needs from the catalog (the current xid8, the
// watched tables' keys, types it meets), the slot's state every wal.monitor_interval (metrics,
// /healthz), and a lost or missing slot re-created after the rules' on_gap actions ran.
#include "pg/WalSourceImpl.hpp"

namespace pgfanout::pg {

namespace {

// The slot's state, for the metrics and the decision to re-create it.
constexpr const char* kSlotSql =
    "SELECT coalesce(wal_status, ''), active::text, "
    "       coalesce(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)"
    "                ::bigint::text, '-1'), "
    "       coalesce(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), "
    "                confirmed_flush_lsn)::bigint::text, '-1'), "
    "       plugin "
    "  FROM pg_catalog.pg_replication_slots WHERE slot_name = $1";

}  // namespace

void WalSource::Impl::monitor_ready() {
  auto weak = weak_from_this();
  const char* sql =
      "SELECT pg_catalog.pg_current_xact_id()::text, "
      "pg_catalog.current_setting('server_version_num')";
  monitor->query_current(sql, {}, [weak](PgResult&& r) {
    auto s = weak.lock();
    if (!s) return;
    if (!r.ok || r.rows.empty() || !r.at(0, 0) || !r.at(0, 1)) {
      s->monitor->fail("error", "reading the current xid: " + r.error);
      return;
    }
    s->decoder.set_reference_xid(std::stoull(*r.at(0, 0)));
    s->server_version = std::atoi(r.at(0, 1)->c_str());
    s->load_table_keys();
  });
}

void WalSource::Impl::catalog_rows(
    const char* sql, PgConnection::Params params, const std::string& what,
    std::function<void(Impl&, const std::vector<std::string>&)> on_row,
    std::function<void(Impl&)> then) {
  auto weak = weak_from_this();
  monitor->query_current(sql, std::move(params), [weak, what, on_row, then](PgResult&& r) {
    auto s = weak.lock();
    if (!s) return;
    if (!r.ok) {
      s->monitor->fail("error", "reading " + what + ": " + r.error);
      return;
    }
    std::vector<std::string> values;
    for (const auto& row : r.rows) {
      values.clear();
      for (const auto& v : row) values.push_back(v.value_or(""));
      on_row(*s, values);
    }
    then(*s);
  });
}

void WalSource::Impl::load_table_keys() {
  auto params = decoder.table_key_params();
  decoder.begin_table_keys();
  catalog_rows(
      kTableKeySql, PgConnection::Params(params.begin(), params.end()), "the watched tables' keys",
      [](Impl& s, const std::vector<std::string>& row) { s.decoder.add_table_key_row(row); },
      [](Impl& s) {
        s.decoder.end_table_keys();
        s.monitor->confirm();
        s.check_slot();
        if (!s.pending_types.empty()) s.load_types();
      });
}

void WalSource::Impl::check_slot() {
  auto weak = weak_from_this();
  monitor->query_current(kSlotSql, {wal.slot}, [weak](PgResult&& r) {
    auto s = weak.lock();
    if (!s || s->stopped) return;
    if (!r.ok) {
      s->monitor->fail("error", "reading the slot: " + r.error);
      return;
    }
    s->schedule_monitor();
    if (r.rows.empty()) {
      s->state.slot_status = "missing";
      s->slot_gone("the replication slot " + s->wal.slot + " does not exist");
      return;
    }
    const auto& row = r.rows[0];
    s->state.slot_status = row[0].value_or("");
    s->state.retained_bytes = std::stoll(row[2].value_or("-1"));
    s->state.lag_bytes = std::stoll(row[3].value_or("-1"));
    s->retained_gauge.set(static_cast<double>(s->state.retained_bytes));
    s->lag_gauge.set(static_cast<double>(s->state.lag_bytes));
    s->update_status_gauges();
    if (row[4].value_or("") != "pgoutput") {
      s->state.last_error = "the replication slot " + s->wal.slot + " uses the plugin " +
                            row[4].value_or("") + ", not pgoutput";
      spdlog::error("WAL source: {}; choose another wal.slot", s->state.last_error);
      return;
    }
    if (s->state.slot_status == "lost") {
      s->slot_gone("the replication slot " + s->wal.slot +
                   " was invalidated (wal_status lost: the WAL it needed was removed, see "
                   "max_slot_wal_keep_size)");
      return;
    }
    if (!s->stream->started() && !s->stopped) s->stream->start();
  });
}

void WalSource::Impl::schedule_monitor() {
  auto weak = weak_from_this();
  monitor_timer.expires_after(wal.monitor_interval);
  monitor_timer.async_wait([weak](boost::system::error_code ec) {
    auto s = weak.lock();
    if (ec || !s || s->stopped || !s->monitor->up()) return;
    s->check_slot();
  });
}

void WalSource::Impl::slot_gone(const std::string& why) {
  if (recreating) return;
  recreating = true;
  state.slot_lost = true;
  ++state.slot_losses;
  slot_lost_total.inc();
  update_status_gauges();
  spdlog::error(
      "WAL source: {}; changes since its position are lost: running the rules' "
      "on_gap actions and re-creating the slot",
      why);
  stream->stop();
  streaming = false;
  run.reset();
  auto weak = weak_from_this();
  monitor->query_current(
      "SELECT pg_catalog.pg_drop_replication_slot(slot_name) "
      "  FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND NOT active",
      {wal.slot}, [weak, why](PgResult&&) {
        auto s = weak.lock();
        if (!s) return;
        s->monitor->query_current(
            "SELECT pg_catalog.pg_create_logical_replication_slot($1::name, 'pgoutput')",
            {s->wal.slot}, [weak, why](PgResult&& r) {
              auto me = weak.lock();
              if (!me) return;
              me->recreating = false;
              if (!r.ok) {
                me->state.last_error = "re-creating the slot: " + r.error;
                spdlog::error("WAL source: {}", me->state.last_error);
                return;  // the next monitor round tries again
              }
              spdlog::warn("WAL source: re-created the replication slot {}", me->wal.slot);
              me->state.slot_lost = false;
              me->state.slot_status = "reserved";
              me->confirmed = 0;
              me->update_status_gauges();
              me->sink.on_events_lost(me->self, why);
              if (!me->stopped) me->stream->start();
            });
      });
}

void WalSource::Impl::update_status_gauges() {
  for (const char* st : {"reserved", "extended", "unreserved", "lost", "missing"}) {
    metrics
        .gauge("pgfanout_wal_slot_status",
               "The replication slot's wal_status (1 for the current one; missing: no slot)",
               {{"status", st}})
        .set(state.slot_status == st ? 1 : 0);
  }
}

void WalSource::Impl::need_types(const std::vector<std::uint32_t>& oids) {
  pending_types.insert(pending_types.end(), oids.begin(), oids.end());
  if (run) run->waiting_types = true;
  if (monitor->up()) load_types();
}

void WalSource::Impl::load_types() {
  std::string list = "{";
  for (std::size_t i = 0; i < pending_types.size(); ++i) {
    list += (i ? "," : "") + std::to_string(pending_types[i]);
  }
  list += "}";
  catalog_rows(
      kTypeCatalogSql, {list}, "types",
      [](Impl& s, const std::vector<std::string>& row) { s.decoder.types().add_row(row); },
      [](Impl& s) {
        s.pending_types.clear();
        if (s.run) {
          s.run->waiting_types = false;
          s.maybe_resume();
        }
      });
}

}  // namespace pgfanout::pg
