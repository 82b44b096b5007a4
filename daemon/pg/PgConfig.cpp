#include "pg/PgConfig.hpp"

#include <algorithm>
#include <cctype>

#include "config/ChannelName.hpp"
#include "config/Fields.hpp"
#include "config/YamlReader.hpp"
#include "pg/ConnInfo.hpp"

namespace pgfanout::pg {

std::span<const config::KeySpec> postgres_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"postgres", Map, "", kRestart, kPlain, kRequired, "The PostgreSQL server to LISTEN on (a primary, not a standby)."},
  {"postgres.dsn", String, "postgresql:///postgres", kRestart, kSecret, kOptional,
   "libpq connection string or URI. Must reach the primary directly or through session pooling: "
   "a hot standby cannot LISTEN and PgBouncer transaction pooling cannot carry it.",
   config::field<&PostgresConfig::dsn>()},
  {"postgres.password", String, "", kRestart, kSecret, kOptional,
   "Password, overriding any in the DSN. Prefer `password_file` or ${ENV}.",
   config::field<&PostgresConfig::password>()},
  {"postgres.connect_timeout", Duration, "10s", kRestart, kPlain, kOptional,
   "How long one connection attempt may take.",
   config::field<&PostgresConfig::connect_timeout>(config::at_least(1000, "must be at least 1s"))},
  {"postgres.heartbeat_interval", Duration, "5s", kRestart, kPlain, kOptional,
   "How often the listener NOTIFYs itself on a private channel to prove it still receives.",
   config::field<&PostgresConfig::heartbeat_interval>(config::kPositive)},
  {"postgres.heartbeat_timeout", Duration, "15s", kRestart, kPlain, kOptional,
   "A heartbeat not back within this time marks the connection broken: it is closed and re-opened.",
   config::field<&PostgresConfig::heartbeat_timeout>()},
  {"postgres.reconnect_min", Duration, "100ms", kRestart, kPlain, kOptional,
   "First reconnect delay; doubles on each failure, with jitter.",
   config::field<&PostgresConfig::reconnect_min>(config::kPositive)},
  {"postgres.reconnect_max", Duration, "30s", kRestart, kPlain, kOptional,
   "Longest reconnect delay.",
   config::field<&PostgresConfig::reconnect_max>()},
  };
  // clang-format on
  return kRows;
}

std::span<const config::KeySpec> outbox_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"outbox", Map, "", kRestart, kPlain, kOptional,
   "How durable rules read pgfanout.outbox (see docs/triggers.md)."},
  {"outbox.poll_interval", Duration, "1s", kRestart, kPlain, kOptional,
   "Read the outbox at least this often, even without a doorbell NOTIFY.",
   config::field<&OutboxConfig::poll_interval>(config::kPositive)},
  {"outbox.batch_size", Int, "500", kRestart, kPlain, kOptional, "Events read per fetch.",
   config::field<&OutboxConfig::batch_size>(config::between(1, 100'000))},
  {"outbox.retry_delay", Duration, "1s", kRestart, kPlain, kOptional,
   "Wait before delivering again events whose actions failed.",
   config::field<&OutboxConfig::retry_delay>(config::kPositive)},
  {"outbox.trim_interval", Duration, "1m", kRestart, kPlain, kOptional,
   "How often consumed events are deleted (pgfanout.outbox_trim).",
   config::field<&OutboxConfig::trim_interval>(config::kPositive)},
  {"outbox.keep", Duration, "10m", kRestart, kPlain, kOptional,
   "Events stay in the outbox at least this long after they were written (and until every live "
   "consumer has passed them): the window in which an SSE client can resume from its "
   "Last-Event-ID. 0: deleted at the first trim after every consumer passed them.",
   config::field<&OutboxConfig::keep>()},
  {"outbox.max_age", Duration, "7d", kRestart, kPlain, kOptional,
   "A consumer not seen for this long no longer holds events back from deletion.",
   config::field<&OutboxConfig::max_age>()},
  {"outbox.trim_batch", Int, "10000", kRestart, kPlain, kOptional,
   "Events deleted per trim statement.",
   config::field<&OutboxConfig::trim_batch>(config::between(1, 10'000'000))},
  };
  // clang-format on
  return kRows;
}

std::span<const config::KeySpec> watch_keys() {
  using enum config::KeyType;
  using namespace config;
  // clang-format off
  static const KeySpec kRows[] = {
  {"watch", List, "", kReload, kPlain, kOptional,
   "Tables that `pgfanout install` puts notification triggers on (pgfanout.watch)."},
  {"watch[].table", String, "", kReload, kPlain, kRequired, "Table name, optionally schema-qualified.",
   config::field<&WatchSpec::table>()},
  {"watch[].channel", String, "", kReload, kPlain, kOptional, "Channel; default `<table>_changed`. 1 to 63 bytes, no NUL, not starting with `pgfanout.`.",
   config::field<&WatchSpec::channel>()},
  {"watch[].columns", StringList, "", kReload, kPlain, kOptional,
   "Columns carried in `new`/`old` (the primary key always is). Default: all.",
   config::field<&WatchSpec::columns>()},
  {"watch[].ops", StringList, "[INSERT, UPDATE, DELETE]", kReload, kPlain, kOptional,
   "Operations that notify.",
   config::field<&WatchSpec::ops>()},
  {"watch[].changed", StringList, "", kReload, kPlain, kOptional,
   "An UPDATE notifies only when one of these columns changed. Default: any watched column.",
   config::field<&WatchSpec::changed>()},
  {"watch[].per_statement", Bool, "false", kReload, kPlain, kOptional,
   "One notification per statement carrying `rows`, split to fit NOTIFY's 8000-byte limit.",
   config::field<&WatchSpec::per_statement>()},
  {"watch[].durable", Bool, "false", kReload, kPlain, kOptional,
   "Also write each event to pgfanout.outbox in the same transaction.",
   config::field<&WatchSpec::durable>()},
  {"watch[].via", String, "notify", kRestart, kPlain, kOptional,
   "`notify`: a trigger NOTIFYs each change; `wal`: no trigger, the WAL source decodes the "
   "change from the publication (see docs/wal.md).",
   config::field<&WatchSpec::via>()},
  };
  // clang-format on
  return kRows;
}

PostgresConfig::PostgresConfig() {
  config::apply_defaults(postgres_keys(), *this);
}

OutboxConfig::OutboxConfig() {
  config::apply_defaults(outbox_keys(), *this);
}

void load_postgres_config(config::MapReader& root, PostgresConfig& pg) {
  auto m = root.map("postgres");
  if (!m) return;
  const std::size_t errors_before = m->ctx().diags.errors().size();
  config::read_fields(*m, pg);
  // Ranges and relations between values are checked only when each value parsed, to avoid echo
  // errors.
  if (m->ctx().diags.errors().size() != errors_before) return;
  std::string dsn_error;
  if (!valid_dsn(pg.dsn, dsn_error)) m->error("dsn", "invalid connection string: " + dsn_error);
  config::check_fields(*m, pg);
  if (pg.heartbeat_timeout <= pg.heartbeat_interval) {
    m->error("heartbeat_timeout", "must be longer than heartbeat_interval");
  }
  if (pg.reconnect_max < pg.reconnect_min) m->error("reconnect_max", "must be >= reconnect_min");
}

void load_outbox_config(config::MapReader& root, OutboxConfig& o) {
  config::read_section(root, "outbox", [&](config::MapReader& m) {
    config::read_fields(m, o);
    config::check_fields(m, o);
  });
}

void load_watch_config(config::MapReader& root, std::vector<WatchSpec>& out) {
  root.each("watch", [&](config::MapReader& w, std::size_t) {
    WatchSpec s;
    config::read_fields(w, s);
    if (w.has("channel")) {  // absent: the trigger generator's default, <table>_changed
      if (auto problem = config::channel_name_problem(s.channel); !problem.empty()) {
        w.error("channel", std::move(problem));
      }
    }
    for (auto& op : s.ops) {
      std::transform(op.begin(), op.end(), op.begin(), ::toupper);
      if (op != "INSERT" && op != "UPDATE" && op != "DELETE") {
        w.error("ops", "unknown op \"" + op + "\" (INSERT, UPDATE or DELETE)");
      }
    }
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
