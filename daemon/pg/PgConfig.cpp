#include "pg/PgConfig.hpp"

#include <algorithm>
#include <cctype>

#include "config/ChannelName.hpp"
#include "config/YamlReader.hpp"
#include "pg/ConnInfo.hpp"

namespace pgfanout::pg {

void load_postgres_config(config::MapReader& root, PostgresConfig& pg) {
  auto m = root.map("postgres");
  if (!m) return;
  const std::size_t errors_before = m->ctx().diags.errors().size();
  pg.dsn = m->string("dsn");
  pg.password = m->string("password");
  pg.connect_timeout = m->duration("connect_timeout");
  pg.heartbeat_interval = m->duration("heartbeat_interval");
  pg.heartbeat_timeout = m->duration("heartbeat_timeout");
  pg.reconnect_min = m->duration("reconnect_min");
  pg.reconnect_max = m->duration("reconnect_max");
  // Relations between values are checked only when each value parsed, to avoid echo errors.
  if (m->ctx().diags.errors().size() != errors_before) return;
  std::string dsn_error;
  if (!valid_dsn(pg.dsn, dsn_error)) m->error("dsn", "invalid connection string: " + dsn_error);
  if (pg.heartbeat_interval.count() <= 0) m->error("heartbeat_interval", "must be positive");
  if (pg.heartbeat_timeout <= pg.heartbeat_interval) {
    m->error("heartbeat_timeout", "must be longer than heartbeat_interval");
  }
  if (pg.reconnect_min.count() <= 0) m->error("reconnect_min", "must be positive");
  if (pg.reconnect_max < pg.reconnect_min) m->error("reconnect_max", "must be >= reconnect_min");
  if (pg.connect_timeout.count() < 1000) m->error("connect_timeout", "must be at least 1s");
}

void load_outbox_config(config::MapReader& root, OutboxConfig& o) {
  config::read_section(root, "outbox", [&](config::MapReader& m) {
    o.poll_interval = m.duration("poll_interval");
    o.batch_size = static_cast<int>(m.integer("batch_size", 1, 100'000));
    o.retry_delay = m.duration("retry_delay");
    o.trim_interval = m.duration("trim_interval");
    o.max_age = m.duration("max_age");
    o.trim_batch = static_cast<int>(m.integer("trim_batch", 1, 10'000'000));
    if (o.poll_interval.count() <= 0) m.error("poll_interval", "must be positive");
    if (o.retry_delay.count() <= 0) m.error("retry_delay", "must be positive");
    if (o.trim_interval.count() <= 0) m.error("trim_interval", "must be positive");
  });
}

void load_watch_config(config::MapReader& root, std::vector<WatchSpec>& out) {
  root.each("watch", [&](config::MapReader& w, std::size_t) {
    WatchSpec s;
    s.table = w.string("table");
    s.channel = w.string("channel");
    if (w.has("channel")) {  // absent: the trigger generator's default, <table>_changed
      if (auto problem = config::channel_name_problem(s.channel); !problem.empty()) {
        w.error("channel", std::move(problem));
      }
    }
    s.columns = w.string_list("columns");
    s.ops = w.string_list("ops");
    for (auto& op : s.ops) {
      std::transform(op.begin(), op.end(), op.begin(), ::toupper);
      if (op != "INSERT" && op != "UPDATE" && op != "DELETE") {
        w.error("ops", "unknown op \"" + op + "\" (INSERT, UPDATE or DELETE)");
      }
    }
    s.changed = w.string_list("changed");
    s.per_statement = w.boolean("per_statement");
    s.durable = w.boolean("durable");
    s.via = w.string("via");
    if (s.via != "notify" && s.via != "wal") {
      w.error("via", "unknown source \"" + s.via + "\" (notify or wal)");
    } else if (s.via == "wal" && s.per_statement) {
      w.error("per_statement", "applies to `via: notify` only (the WAL source reports rows)");
    } else if (s.via == "wal" && s.durable) {
      w.error("durable", "applies to `via: notify` only (the WAL itself is durable)");
    }
    out.push_back(std::move(s));
  });
}

}  // namespace pgfanout::pg
