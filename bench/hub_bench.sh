#!/usr/bin/env bash
# The hub under load: N WebSocket subscribers of one topic on the same machine as the server.
# Measures RSS per idle connection, delivered messages/s for a broadcast burst, and commit ->
# frame latency at a steady rate of broadcasts and of messages to one subscriber each, for the
# pgfanout daemon (NOTIFY -> push) and for a minimal Beast broadcast server (the baseline,
# measured in the same run), and prints the ratios and the daemon's worst event loop stall.
#
#   bench/hub_bench.sh [connections] [burst] [bytes] [rate] [seconds] [to_rate]
#   bench/hub_bench.sh 10000 20 100 2 10 1000     # the defaults
#
# THREADS="1 2" (the default): the daemon is measured once per hub.threads value, one after the
# other in the same run, each against the same baseline.
#
# Builds with -DPGFANOUT_BENCH=ON into build/ and starts a throwaway PostgreSQL via tests/harness.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/lib.sh"
if [ -z "${PGFANOUT_TEST_DSN:-}" ]; then
  bench_preflight
  exec "$root/tests/harness/with-servers.sh" "$0" "$@"
fi
conns=${1:-10000}
burst=${2:-20}
bytes=${3:-100}
rate=${4:-2}
seconds=${5:-10}
to_rate=${6:-1000}
build=${BUILD:-$root/build}

cmake -S "$root" -B "$build" -DPGFANOUT_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target pgfanout hub_bench >/dev/null
ulimit -n "$(ulimit -Hn)"

db="pgfanout_bench_$$_${RANDOM}"
dsn="$PGFANOUT_TEST_DSN dbname=$db"
psql "$PGFANOUT_TEST_DSN" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\""
tmp=$(mktemp -d)
cleanup() {
  set +e
  bench_cleanup
  psql "$PGFANOUT_TEST_DSN" -X -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT

cat > "$tmp/pgfanout.yaml" <<YAML
postgres:
  dsn: "$dsn"
http:
  listen: 127.0.0.1:0
log:
  level: warn
topics:
  - pattern: bench
    allow: [subscribe]
    anonymous: true
  - pattern: "u:*"
    allow: [subscribe]
    anonymous: true
hub:
  max_connections: 100000
  send_queue_size: 4MiB
  threads: @THREADS@
rules:
  - name: bench
    channel: bench
    actions:
      - push: {topic: bench, event: tick}
  - name: bench_to
    channel: bench_to
    actions:
      - push: {topic: "u:{to}", event: tick}
YAML
# HEAPTRACK=1: the daemon runs under heaptrack, and where its heap went at its peak is printed
# per connection after its run (docs/benchmarks.md, "Where an idle connection's memory goes");
# heaptrack slows the daemon down, so that run's latencies and stalls mean nothing.
wrap=()
[ -n "${HEAPTRACK:-}" ] && wrap=(heaptrack -o "$tmp/heap")
threads_list=${THREADS:-1 2}
run_daemon() {
  local threads=$1
  sed "s/@THREADS@/$threads/" "$tmp/pgfanout.yaml" > "$tmp/pgfanout-$threads.yaml"
  : > "$tmp/daemon.log"
  bench_start pgfanout "$tmp/daemon.log" "${wrap[@]}" "$build/pgfanout" run --config "$tmp/pgfanout-$threads.yaml" --log-level info
  bench_wait_log "$tmp/daemon.log" "ready"
  port=$(sed -n 's/.*HTTP listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/daemon.log" | head -1)
  daemon_pid=$bench_pid  # under heaptrack, the daemon is its child
  [ -n "${HEAPTRACK:-}" ] && daemon_pid=$(pgrep -n -f "^$build/pgfanout run --config $tmp/pgfanout-$threads.yaml")

  echo "== pgfanout (NOTIFY -> push -> WebSocket), $conns subscribers, hub.threads $threads"
  "$build/bench/hub_bench" load "$port" "$conns" daemon "$dsn" "$burst" "$bytes" "$rate" "$seconds" \
    "$daemon_pid" "$to_rate" | tee "$tmp/daemon-$threads.txt" || { bench_alive; echo "bench: the load client failed" >&2; exit 1; }
  if [ -n "${HEAPTRACK:-}" ]; then
    kill -TERM "$daemon_pid"
    wait "$bench_pid" 2>/dev/null || true
    bench_pid=
    echo "== pgfanout's heap at its peak, the largest consumers per connection (heaptrack)"
    heaptrack_print -f "$tmp"/heap.* --print-peaks 1 --print-allocators 0 --print-temporary 0 \
      --print-leaks 0 --peak-limit 8 --sub-peak-limit 1 2>/dev/null |
      awk -v n="$conns" '
        function bytes(v) { return v ~ /K$/ ? v * 1000 : v ~ /M$/ ? v * 1000000 : v ~ /G$/ ? v * 1e9 : v + 0 }
        / consumed over [0-9]+ calls from:$/ { want = 1; size = bytes($1); next }
        want && NF { sub(/^ +/, ""); printf "%8.0f B  %s\n", size / n, substr($0, 1, 110); want = 0 }'
    rm -f "$tmp"/heap.*
  else
    bench_stop
  fi
}
for t in $threads_list; do run_daemon "$t"; done

# Below the ephemeral range (32768 and up), where the 10,000 client sockets take their ports.
bport=$((20000 + RANDOM % 12000))
bench_start "baseline server" "$tmp/server.log" "$build/bench/hub_bench" server "$bport"
sleep 0.5
bench_alive
echo "== baseline (bare Beast broadcast server), $conns subscribers"
"$build/bench/hub_bench" load "$bport" "$conns" baseline - "$burst" "$bytes" "$rate" "$seconds" \
  "$bench_pid" "$to_rate" | tee "$tmp/baseline.txt" || { bench_alive; echo "bench: the load client failed" >&2; exit 1; }
bench_stop

field() { grep "^$1" "$2" | sed "s|^$1 *||" | awk -v n="$3" '{print $n}'; }
b_rate=$(field delivered/s "$tmp/baseline.txt" 1)
b_rss=$(field "rss per idle conn" "$tmp/baseline.txt" 1)
b_p99=$(field "latency ms" "$tmp/baseline.txt" 6)
b_to=$(field "to-one latency ms" "$tmp/baseline.txt" 6)
for t in $threads_list; do
  f="$tmp/daemon-$t.txt"
  d_rate=$(field delivered/s "$f" 1); d_rss=$(field "rss per idle conn" "$f" 1)
  d_p99=$(field "latency ms" "$f" 6); d_to=$(field "to-one latency ms" "$f" 6)
  echo "== ratios (pgfanout with hub.threads $t / baseline)"
  awk -v a="$d_rate" -v b="$b_rate" 'BEGIN{printf "delivered/s        %.0f / %.0f = %.2f\n", a, b, a/b}'
  awk -v a="$d_rss" -v b="$b_rss" 'BEGIN{printf "KiB per idle conn  %.2f / %.2f = %.2f\n", a, b, (b>0?a/b:0)}'
  awk -v a="$d_p99" -v b="$b_p99" 'BEGIN{printf "p99 latency ms     %.2f / %.2f = %.2f\n", a, b, (b>0?a/b:0)}'
  awk -v a="$d_to" -v b="$b_to" 'BEGIN{printf "p99 to-one ms      %.2f / %.2f = %.2f\n", a, b, (b>0?a/b:0)}'
  echo "worst stall ms     $(field "worst stall ms" "$f" 1) (pgfanout's event loop, whole run)"
done
echo "load average       $(cut -d' ' -f1-3 /proc/loadavg)"
