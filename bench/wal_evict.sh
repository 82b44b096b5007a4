#!/usr/bin/env bash
# Redis eviction through the WAL source, next to the NOTIFY path in the same run and the same
# daemon (one config: a `via: wal` table, and a rule on channel `bench` that both pg_notify and
# pgfanout.emit reach):
#
#   burst    one UPDATE of N rows of a `via: wal` table in one transaction, whose rule evicts
#            key:{id} (N keys pre-filled): from the commit returning until every key is gone,
#            and the daemon's peak RSS meanwhile (VmHWM, reset before each burst);
#            next to its ceiling (measured last, with the daemon stopped): the same UPDATE
#            while a minimal pgoutput consumer streams a second slot, commit returned -> the
#            transaction received (bench/redis_probe.cpp wal-ceiling);
#            then N pg_notify (the NOTIFY path) and N pgfanout.emit (a WAL message each) in one
#            transaction, the same way;
#   steady   RATE single-row commits per second, each one pgfanout.emit (WAL), then each one
#            pg_notify (NOTIFY): commit returned -> key gone, p50 / p90 / p99 / max.
#
#   bench/wal_evict.sh [BUILD_DIR]         (default: build; run `make build` first)
#
# Environment: N (burst size, default 200000), RATE (steady commits/s, default 5000),
# SECONDS_STEADY (default 10), MAX_PENDING (wal.max_pending, default 10000). PostgreSQL and Redis
# come from tests/harness/with-servers.sh, whose PostgreSQL runs with fsync = off (as for
# bench/redis_evict.sh: one connection could not commit 5,000 times a second with fsync on) and
# synchronous_commit = off; the scratch database sets synchronous_commit = on, as in production:
# a walsender sends only flushed WAL, and without it a commit reaches the WAL source only when
# the WAL writer flushes (every wal_writer_delay, 200 ms). SYNCHRONOUS_COMMIT=off measures that.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac

source "$root/bench/lib.sh"
if [ -z "${PGFANOUT_TEST_DSN:-}" ]; then
  bench_preflight
  bench_need_binary "$build/pgfanout"
  exec "$root/tests/harness/with-servers.sh" "$0" "$build"
fi

N=${N:-200000}
RATE=${RATE:-5000}
SECONDS_STEADY=${SECONDS_STEADY:-10}
MAX_PENDING=${MAX_PENDING:-10000}
STREAMING=${STREAMING:-false}
DECODING_WORK_MEM=${DECODING_WORK_MEM:-1MiB}
SYNCHRONOUS_COMMIT=${SYNCHRONOUS_COMMIT:-on}
port=$PGFANOUT_TEST_REDIS_PORT
bench_scratch_db
work=$(mktemp -d "${TMPDIR:-/tmp}/pgfanout-bench.XXXXXX")
cleanup() {
  bench_cleanup
  rm -rf "$work"
}
trap cleanup EXIT

rcli() { redis-cli -p "$port" "$@"; }
val() { sed -n "s/^$1=//p" "$2"; }
qv() { psql "$dsn" -X -At -v ON_ERROR_STOP=1 -c "$1"; }

c++ -O2 -std=c++20 "$root/bench/redis_probe.cpp" -I"$(pg_config --includedir)" -lpq -lhiredis \
  -pthread -o "$work/redis_probe"

prefill() {  # prefill COUNT PREFIX
  awk -v n="$1" -v p="$2" 'BEGIN { for (i = 1; i <= n; i++) printf "SET %s%d v\r\n", p, i }' |
    rcli --pipe >/dev/null
}

psql "$dsn" -X -q -v ON_ERROR_STOP=1 <<SQL
ALTER DATABASE "$db" SET synchronous_commit = $SYNCHRONOUS_COMMIT;
CREATE TABLE wal_items (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO wal_items SELECT g, 0 FROM generate_series(1, $N) g;
VACUUM ANALYZE wal_items;
SQL

cat >"$work/bench.yaml" <<YAML
postgres: {dsn: "$dsn"}
redis: {url: "$PGFANOUT_TEST_REDIS_URL"}
http: {listen: 127.0.0.1:0}
log: {level: info}
wal: {slot: bench_wal, publication: bench_wal, max_pending: $MAX_PENDING, streaming: $STREAMING, decoding_work_mem: $DECODING_WORK_MEM}
watch:
  - table: public.wal_items
    channel: wal_items_changed
    via: wal
rules:
  - name: items
    channel: wal_items_changed
    actions:
      - evict: "key:{id}"
  - name: bench
    channel: bench
    actions:
      - evict: "bench:{id}"
YAML

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== machine: $(nproc) cores, $(uname -r); PostgreSQL $(qv 'show server_version') (fsync=$(qv 'show fsync'), synchronous_commit=$(qv 'show synchronous_commit') in the benchmark's database), $(redis-server --version | awk '{print $3}')"

"$build/pgfanout" install --config "$work/bench.yaml" >"$work/install.log" 2>&1 ||
  { echo "bench: pgfanout install failed:" >&2; cat "$work/install.log" >&2; exit 1; }
bench_start pgfanout "$work/daemon.log" "$build/pgfanout" run --config "$work/bench.yaml"
bench_wait_log "$work/daemon.log" "WAL source: streaming from slot" 20
bench_wait_log "$work/daemon.log" "ready" 20
sleep 0.3
echo "replica identity of wal_items: $(qv "SELECT relreplident FROM pg_class WHERE relname = 'wal_items'") (d: default, f: full); wal.max_pending: $MAX_PENDING; wal.streaming: $STREAMING; wal.decoding_work_mem: $DECODING_WORK_MEM"
echo "daemon RSS idle: $(bench_rss_kb) kB"

# CPU time (user + system, in clock ticks) a process has used so far; 0 when it is gone.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
walsender_pid=$(qv "SELECT pid FROM pg_stat_replication WHERE application_name = 'pgfanout' LIMIT 1")
redis_pid=$(pgrep -f "redis-server.*:$port" | head -1)

# burst NAME PREFIX PROBE-ARGS...: N pre-filled keys, the transaction, until Redis is empty.
burst() {
  local name=$1 prefix=$2 d0 w0 r0 cpu
  shift 2
  rcli flushall >/dev/null
  prefill "$N" "$prefix"
  bench_reset_hwm
  d0=$(cpu_ticks "$bench_pid") w0=$(cpu_ticks "$walsender_pid") r0=$(cpu_ticks "$redis_pid")
  "$work/redis_probe" "$@" >"$work/burst-$name.txt" || bench_alive
  bench_alive
  # Where the CPU went during the burst (BEGIN to the last key gone): which process bounds it.
  cpu="  cpu seconds during it: daemon $(awk -v a="$d0" -v b="$(cpu_ticks "$bench_pid")" -v h="$hz" 'BEGIN {printf "%.2f", (b - a) / h}'), walsender $(awk -v a="$w0" -v b="$(cpu_ticks "$walsender_pid")" -v h="$hz" 'BEGIN {printf "%.2f", (b - a) / h}'), redis $(awk -v a="$r0" -v b="$(cpu_ticks "$redis_pid")" -v h="$hz" 'BEGIN {printf "%.2f", (b - a) / h}')"
  echo "burst $name: $N keys; the transaction took $(val commit_seconds "$work/burst-$name.txt") s; all gone $(val after_commit_seconds "$work/burst-$name.txt") s after the commit returned = $(val rate_after_commit "$work/burst-$name.txt") keys/s; first to last gone $(val first_to_last_seconds "$work/burst-$name.txt") s = $(val rate_first_to_last "$work/burst-$name.txt") keys/s; BEGIN to last: $(val rate_total "$work/burst-$name.txt") keys/s; keys left: $(val keys_left "$work/burst-$name.txt")"
  echo "  daemon RSS after: $(bench_rss_kb) kB, peak during it (VmHWM): $(bench_hwm_kb) kB"
  echo "$cpu"
}
burst wal-update "key:" burst-update "$dsn" wal_items "$N" "$port"
burst notify "bench:" burst "$dsn" bench "$N" "$port" notify
burst wal-emit "bench:" burst "$dsn" bench "$N" "$port" emit
rcli flushall >/dev/null

# steady NAME VIA: RATE commits/s for SECONDS_STEADY s, commit returned -> key gone.
steady() {
  "$work/redis_probe" steady "$dsn" bench "$port" "$RATE" "$SECONDS_STEADY" "bench:" "$2" >"$work/steady-$1.txt" || bench_alive
  bench_alive
  echo "steady $1: $(val commits "$work/steady-$1.txt") commits at $(val achieved_rate "$work/steady-$1.txt")/s, evicted $(val evicted "$work/steady-$1.txt"); commit-returned -> key-gone p50 $(val p50_ms "$work/steady-$1.txt") ms, p90 $(val p90_ms "$work/steady-$1.txt") ms, p99 $(val p99_ms "$work/steady-$1.txt") ms, max $(val max_ms "$work/steady-$1.txt") ms ($(val gone_before_commit_returned "$work/steady-$1.txt") gone before the commit returned, counted as 0)"
  rcli flushall >/dev/null
}
steady wal-emit emit
steady notify notify
echo "daemon RSS at the end: $(bench_rss_kb) kB"

# The UPDATE burst's ceiling: with the daemon stopped, a minimal pgoutput consumer on a second
# slot streams while the same UPDATE runs, as the daemon does, and only counts what it receives
# (PostgreSQL's walsender alone: decoding, replaying the transaction at its commit, sending).
# How fast the walsender delivers depends on how the consumer reads (redis_probe.cpp), so the
# consumer runs once per pause between its reads, and the fastest counts. It always uses
# protocol 1 (no streaming), at the server's logical_decoding_work_mem.
# A new slot each time: the consumer confirms nothing, so a slot used again would replay the
# previous run's transaction.
bench_stop
: >"$work/ceiling.txt"
for pause in 0 250 500 1000; do
  qv "VACUUM wal_items" >/dev/null   # each run's UPDATE leaves N dead rows
  qv "SELECT pg_create_logical_replication_slot('bench_ceiling', 'pgoutput')" >/dev/null
  if ! "$work/redis_probe" wal-ceiling "$dsn" bench_ceiling bench_wal public.wal_items "$N" "$pause" >"$work/ceiling-$pause.txt"; then
    echo "ceiling, the consumer pausing $pause us between reads: failed (above)"
    qv "SELECT pg_drop_replication_slot('bench_ceiling')" >/dev/null
    continue
  fi
  echo "ceiling, UPDATE burst, the consumer pausing $pause us between reads: the $N row changes and the commit received $(val after_commit_seconds "$work/ceiling-$pause.txt") s after the commit returned = $(val rate_after_commit "$work/ceiling-$pause.txt") rows/s"
  rate=$(val rate_after_commit "$work/ceiling-$pause.txt")
  if [ ! -s "$work/ceiling.txt" ] || [ "$rate" -gt "$(val rate_after_commit "$work/ceiling.txt")" ]; then
    cp "$work/ceiling-$pause.txt" "$work/ceiling.txt"
  fi
  qv "SELECT pg_drop_replication_slot('bench_ceiling')" >/dev/null
done

echo "== ratios (WAL / NOTIFY, same run)"
awk -v wu="$(val rate_after_commit "$work/burst-wal-update.txt")" -v we="$(val rate_after_commit "$work/burst-wal-emit.txt")" \
  -v n="$(val rate_after_commit "$work/burst-notify.txt")" -v c="$(val rate_after_commit "$work/ceiling.txt")" \
  -v w50="$(val p50_ms "$work/steady-wal-emit.txt")" -v w99="$(val p99_ms "$work/steady-wal-emit.txt")" \
  -v n50="$(val p50_ms "$work/steady-notify.txt")" -v n99="$(val p99_ms "$work/steady-notify.txt")" 'BEGIN {
  printf "burst keys/s after the commit: WAL UPDATE / NOTIFY = %.2f, WAL emit / NOTIFY = %.2f (target: WAL UPDATE >= 500000 keys/s)\n", wu / n, we / n
  if (c > 0) printf "WAL UPDATE burst / its ceiling (rows/s after the commit, same run, the ceiling without streaming) = %.2f\n", wu / c
  printf "steady p50: WAL %.3f / NOTIFY %.3f ms = %.2f; p99: WAL %.3f / NOTIFY %.3f ms = %.2f (targets: WAL p50 <= 1 ms, p99 <= 5 ms)\n", w50, n50, w50 / n50, w99, n99, w99 / n99 }'
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if grep -qiE 'error|critical' "$work/daemon.log"; then echo "daemon log:"; cat "$work/daemon.log"; fi
