#!/usr/bin/env bash
# Redis eviction benchmark: burst throughput and steady-load latency of pgfanout's evict action,
# next to the raw ceilings measured in the same run (a minimal libpq LISTEN consumer and
# redis-benchmark's pipelined UNLINK).
#
#   bench/redis_evict.sh [BUILD_DIR]         (default: build; run `make build` first)
#
# Environment: N (burst size, default 200000), RATE (steady commits/s, default 5000),
# SECONDS_STEADY (default 10). Throwaway PostgreSQL and Redis come from
# tests/harness/with-servers.sh; nothing else on the machine is touched.
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
port=$PGFANOUT_TEST_REDIS_PORT
work=$(mktemp -d "${TMPDIR:-/tmp}/pgfanout-bench.XXXXXX")
cleanup() {
  bench_cleanup
  rm -rf "$work"
}
trap cleanup EXIT

rcli() { redis-cli -p "$port" "$@"; }
val() { sed -n "s/^$1=//p" "$2"; }

c++ -O2 -std=c++20 "$root/bench/redis_probe.cpp" -I"$(pg_config --includedir)" -lpq -lhiredis \
  -pthread -o "$work/redis_probe"

prefill() {  # prefill COUNT PREFIX
  awk -v n="$1" -v p="$2" 'BEGIN { for (i = 1; i <= n; i++) printf "SET %s%d v\r\n", p, i }' |
    rcli --pipe >/dev/null
}

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== machine: $(nproc) cores, $(uname -r); PostgreSQL $(psql "$PGFANOUT_TEST_DSN" -Atc 'show server_version'), $(redis-server --version | awk '{print $3}')"

# ---- raw ceilings
"$work/redis_probe" listen-ceiling "$PGFANOUT_TEST_DSN" bench_ceiling "$N" >"$work/ceiling.txt"
listen_rate=$(val rate_first_to_last "$work/ceiling.txt")
echo "libpq LISTEN consumer: $N notifications, first to last in $(val first_to_last_seconds "$work/ceiling.txt") s = $listen_rate/s; BEGIN to last: $(val rate_total "$work/ceiling.txt")/s (the transaction itself took $(val commit_seconds "$work/ceiling.txt") s)"

"$work/redis_probe" steady-listen "$PGFANOUT_TEST_DSN" bench_ceiling "$RATE" "$SECONDS_STEADY" >"$work/steady_ceiling.txt"
echo "libpq LISTEN consumer at $RATE commits/s: commit-returned -> received p50 $(val p50_ms "$work/steady_ceiling.txt") ms, p90 $(val p90_ms "$work/steady_ceiling.txt") ms, p99 $(val p99_ms "$work/steady_ceiling.txt") ms, max $(val max_ms "$work/steady_ceiling.txt") ms"

prefill "$N" "rb:"
bench_out=$(redis-benchmark -p "$port" -n 2000000 -P 512 -r "$N" -q UNLINK "rb:__rand_int__" 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | tail -1)
unlink_rate=$(echo "$bench_out" | sed -E 's/.*: ([0-9.]+) requests per second.*/\1/' | cut -d. -f1)
echo "redis-benchmark pipelined UNLINK (-P 512): $unlink_rate keys/s"
rcli flushall >/dev/null

# ---- the daemon
cat >"$work/bench.yaml" <<YAML
postgres: {dsn: "$PGFANOUT_TEST_DSN"}
redis: {url: "$PGFANOUT_TEST_REDIS_URL"}
log: {level: warn}
rules:
  - name: bench
    channel: bench
    actions:
      - evict: "bench:{id}"
YAML
bench_start pgfanout "$work/daemon.log" "$build/pgfanout" run --config "$work/bench.yaml"
listening=0
for _ in $(seq 1 100); do
  bench_alive
  if psql "$PGFANOUT_TEST_DSN" -Atc "select count(*) from pg_stat_activity where query ilike 'LISTEN%bench%'" | grep -q '^[1-9]'; then listening=1; break; fi
  sleep 0.1
done
[ "$listening" = 1 ] || { echo "bench: the daemon did not LISTEN within 10 s; its log:" >&2; cat "$work/daemon.log" >&2; exit 1; }
sleep 0.3
rss() { bench_rss_kb; }
hwm() { bench_hwm_kb; }
echo "daemon RSS idle: $(rss) kB"

# Burst: N pre-filled keys, N notifications in one transaction, until DBSIZE is 0.
prefill "$N" "bench:"
"$work/redis_probe" burst "$PGFANOUT_TEST_DSN" bench "$N" "$port" >"$work/burst.txt" || bench_alive
bench_alive
burst_rate=$(val rate_first_to_last "$work/burst.txt")
echo "burst: $N keys, first to last gone in $(val first_to_last_seconds "$work/burst.txt") s = $burst_rate keys/s; all gone $(val after_commit_seconds "$work/burst.txt") s after the commit returned; BEGIN to last: $(val rate_total "$work/burst.txt") keys/s (the transaction itself took $(val commit_seconds "$work/burst.txt") s); keys left: $(val keys_left "$work/burst.txt")"
echo "daemon RSS after burst: $(rss) kB (peak $(hwm) kB)"
awk -v d="$burst_rate" -v l="$listen_rate" -v u="$unlink_rate" 'BEGIN {
  printf "ratio: daemon/libpq ceiling = %.2f, daemon/redis-benchmark = %.2f\n", d / l, d / u }'

# Steady load: RATE single-row commits per second, commit -> key-gone latency.
"$work/redis_probe" steady "$PGFANOUT_TEST_DSN" bench "$port" "$RATE" "$SECONDS_STEADY" "bench:" >"$work/steady.txt" || bench_alive
bench_alive
echo "steady: $(val commits "$work/steady.txt") commits at $(val achieved_rate "$work/steady.txt")/s, evicted $(val evicted "$work/steady.txt"); commit-returned -> key-gone p50 $(val p50_ms "$work/steady.txt") ms, p90 $(val p90_ms "$work/steady.txt") ms, p99 $(val p99_ms "$work/steady.txt") ms, max $(val max_ms "$work/steady.txt") ms ($(val gone_before_commit_returned "$work/steady.txt") gone before the commit returned to the client, counted as 0)"
echo "daemon RSS after steady: $(rss) kB (peak $(hwm) kB)"
bench_alive
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if grep -qiE 'error|critical' "$work/daemon.log"; then echo "daemon log:"; cat "$work/daemon.log"; fi
