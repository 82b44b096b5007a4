#!/usr/bin/env bash
# Commit time of one bulk UPDATE of every row of a table: no trigger (baseline), a per-row watch
# and a per-statement watch, each with the generated PL/pgSQL functions and, when the server has
# them (sql/native, docs/triggers.md#native-triggers), with the native ones; then the durable
# variants. A LISTEN-ing session is connected throughout, so the notifications are really queued
# (PostgreSQL skips the queue for channels nobody listens to). Besides the wall time it prints the
# CPU time of the writing backend (/proc/<pid>/stat), which other jobs on the machine disturb less.
#
#   PGFANOUT_TEST_DSN='host=... user=postgres' bench/per_statement.sh [rows] [runs]
#   bench/per_statement.sh                    # starts a throwaway server via tests/harness
#
# Prints the medians of `runs` runs (default 5) for 100,000 rows (default) and the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/lib.sh"
if [ -z "${PGFANOUT_TEST_DSN:-}" ]; then
  bench_preflight
  exec "$root/tests/harness/with-servers.sh" "$0" "$@"
fi
rows=${1:-100000}
runs=${2:-5}

bench_scratch_db
trap bench_cleanup EXIT

# Each case starts from the same freshly loaded table: run after run, an UPDATE of every row
# leaves the table and its index larger, which would count against whichever case runs last.
fresh_table() {
  psql "$dsn" -X -q -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_items;
CREATE TABLE bench_items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL,
                          stock int NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO bench_items SELECT g, 'item ' || g, (g % 1000) / 10.0, 0, now() FROM generate_series(1, $rows) g;
VACUUM ANALYZE bench_items;
CHECKPOINT;
SQL
}

bench_listen bench_items_changed

# One UPDATE of every row, commit included: "wall_ms cpu_ticks" (the backend's user + system
# time; the server runs on this machine, so /proc shows its processes).
time_update() {
  psql "$dsn" -X -q -At -v ON_ERROR_STOP=1 <<'SQL' | tail -1
\timing off
CREATE TEMP TABLE t0 AS SELECT clock_timestamp() AS t, pg_backend_pid() AS pid,
  split_part(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ') ', 2) AS st;
UPDATE bench_items SET stock = stock + 1;
SELECT round(extract(epoch FROM clock_timestamp() - t) * 1000) || ' ' ||
       ((split_part(s2, ' ', 12)::bigint + split_part(s2, ' ', 13)::bigint)
        - (split_part(st, ' ', 12)::bigint + split_part(st, ' ', 13)::bigint))
  FROM t0, LATERAL (SELECT split_part(pg_read_file('/proc/' || pid || '/stat'), ') ', 2) AS s2) AS x;
SQL
}
# One measurement of a case: "wall_ms cpu_ticks" of the second UPDATE on a freshly loaded table
# (after a warm-up UPDATE and a VACUUM). $1: pgfanout.native (on / off) for watch() ($2).
measure() {
  local native=$1 watch=$2
  fresh_table
  if [ -n "$watch" ]; then
    psql "$dsn" -X -q -v ON_ERROR_STOP=1 -c "SET pgfanout.native = $native" -c "$watch" >/dev/null
  fi
  time_update >/dev/null   # warm-up
  psql "$dsn" -X -q -c "VACUUM bench_items" >/dev/null
  time_update
  # A durable case adds 100,000 outbox rows a run: empty it.
  psql "$dsn" -X -q -c "TRUNCATE pgfanout.outbox" >/dev/null
}
clk=$(getconf CLK_TCK)

have_native=$(psql "$dsn" -XAt -c "SELECT pgfanout.native_enabled()")
kinds=(off)
if [ "$have_native" = t ]; then kinds+=(on); fi
cases=("no trigger (baseline)|off|")
for durable in false true; do
  for native in "${kinds[@]}"; do
    kind=$([ "$native" = on ] && echo native || echo PL/pgSQL)
    prefix=$([ "$durable" = true ] && echo "durable " || echo "")
    cases+=("${prefix}per-row watch, $kind|$native|SELECT pgfanout.watch('bench_items', durable => $durable)"
            "${prefix}per-statement watch, $kind|$native|SELECT pgfanout.watch('bench_items', per_statement => true, durable => $durable)")
  done
done

echo "UPDATE of $rows rows, median of $runs runs (taken in turn), a LISTEN-ing session connected"
echo "(PostgreSQL $(psql "$dsn" -XAtc 'SHOW server_version'); load average $(cut -d' ' -f1-3 /proc/loadavg))"
[ "$have_native" = t ] || echo "(no native triggers on this server: see docs/triggers.md#native-triggers)"
printf '%-42s %8s %7s %8s %7s %12s\n' "" "wall ms" "x base" "CPU ms" "x base" "x base/round"
# Runs go round all the cases in turn, so that the machine's ups and downs over the minutes this
# takes fall on every case alike; each case reports its median.
declare -A wall_of cpu_of
for _ in $(seq 1 "$runs"); do
  for k in "${!cases[@]}"; do
    IFS='|' read -r label native watch <<<"${cases[$k]}"
    read -r wall ticks <<<"$(measure "$native" "$watch")"
    wall_of[$k]+="$wall "
    cpu_of[$k]+="$((ticks * 1000 / clk)) "
  done
done
# The last column pairs each run of a case with the baseline's run of the same round (measured a
# minute or two apart) and gives the median of those ratios: the machine's slower and faster
# minutes then count against the baseline as much as against the case.
base_wall= base_cpu=
for k in "${!cases[@]}"; do
  IFS='|' read -r label native watch <<<"${cases[$k]}"
  wall=$(tr ' ' '\n' <<<"${wall_of[$k]}" | grep . | bench_median)
  cpu=$(tr ' ' '\n' <<<"${cpu_of[$k]}" | grep . | bench_median)
  if [ -z "$base_wall" ]; then base_wall=$wall base_cpu=$cpu; fi
  paired=$(paste -d' ' <(tr ' ' '\n' <<<"${wall_of[$k]}" | grep .) \
    <(tr ' ' '\n' <<<"${wall_of[0]}" | grep .) | awk '{printf "%.4f\n", $1 / $2}' | bench_median)
  awk -v l="$label" -v w="$wall" -v c="$cpu" -v bw="$base_wall" -v bc="$base_cpu" -v p="$paired" \
    'BEGIN { printf "%-42s %8d %6.1fx %8d %6.1fx %11.2fx\n", l, w, w / bw, c, (bc > 0 ? c / bc : 0), p }'
done
echo "targets: a per-row watch at most 3x, a per-statement watch at most 2x the no-trigger time"
