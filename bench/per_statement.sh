#!/usr/bin/env bash
# Commit time of one bulk UPDATE of every row of a table: no trigger (baseline), a per-row watch,
# a per-statement watch. A LISTEN-ing session is connected throughout, so the notifications are
# really queued (PostgreSQL skips the queue for channels nobody listens to).
#
#   PGFANOUT_TEST_DSN='host=... user=postgres' bench/per_statement.sh [rows] [runs]
#   bench/per_statement.sh                    # starts a throwaway server via tests/harness
#
# Prints the median of `runs` runs (default 5) for 100,000 rows (default) and the ratios.
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

psql "$dsn" -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE bench_items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL,
                          stock int NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO bench_items SELECT g, 'item ' || g, (g % 1000) / 10.0, 0, now() FROM generate_series(1, $rows) g;
VACUUM ANALYZE bench_items;
SQL

bench_listen bench_items_changed

# Milliseconds for one UPDATE of every row, commit included.
time_update() {
  psql "$dsn" -X -q -At -v ON_ERROR_STOP=1 <<'SQL' | tail -1
\timing off
CREATE TEMP TABLE t0 AS SELECT clock_timestamp() AS t;
UPDATE bench_items SET stock = stock + 1;
SELECT round(extract(epoch FROM clock_timestamp() - t) * 1000) FROM t0;
SQL
}
measure() {
  local label=$1 watch=$2
  psql "$dsn" -X -q -v ON_ERROR_STOP=1 -c "SELECT pgfanout.unwatch('bench_items')" >/dev/null
  if [ -n "$watch" ]; then psql "$dsn" -X -q -v ON_ERROR_STOP=1 -c "$watch" >/dev/null; fi
  time_update >/dev/null   # warm-up
  for _ in $(seq 1 "$runs"); do
    psql "$dsn" -X -q -c "VACUUM bench_items" >/dev/null
    time_update
  done | bench_median
}
base=$(measure "no trigger" "")
row=$(measure "per-row" "SELECT pgfanout.watch('bench_items')")
stmt=$(measure "per-statement" "SELECT pgfanout.watch('bench_items', per_statement => true)")

echo "UPDATE of $rows rows, median of $runs runs, a LISTEN-ing session connected (PostgreSQL $(psql "$dsn" -XAtc 'SHOW server_version'); load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-28s %8s ms\n' "no trigger (baseline)" "$base" "per-row watch" "$row" "per-statement watch" "$stmt"
awk -v b="$base" -v r="$row" -v s="$stmt" 'BEGIN {
  printf "per-row / baseline        %8.1fx\n", r / b
  printf "per-statement / baseline  %8.1fx\n", s / b
  printf "per-row / per-statement   %8.1fx\n", r / s
}'
