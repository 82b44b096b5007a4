#!/usr/bin/env bash
# What a watch costs a writer of single-row transactions: pgbench, each transaction one UPDATE of
# a random row of a 100,000-row table, with no trigger (baseline), a per-row watch and a
# per-statement watch with the generated PL/pgSQL functions, and a per-row watch with the native
# triggers when the server has them (docs/triggers.md#native-triggers), 1 and 8 clients. PostgreSQL runs with its production defaults (fsync,
# synchronous_commit and full_page_writes on: PGFANOUT_TEST_PG_DURABLE=1), and a LISTEN-ing
# session is connected, so every notification goes through the queue. A case without a trigger
# that sends one NOTIFY per transaction shows what NOTIFY itself costs: the floor for any watch.
#
#   bench/writer_cost_notify.sh [seconds] [runs]        # starts a throwaway server via tests/harness
#   PGFANOUT_TEST_DSN='host=... user=postgres' bench/writer_cost_notify.sh [seconds] [runs]
#
# Prints the median tps of `runs` runs (default 3) of `seconds` seconds (default 15) per case, the
# cases taken in turn, and the ratios to the baseline measured in the same run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/lib.sh"
if [ -z "${PGFANOUT_TEST_DSN:-}" ]; then
  bench_preflight
  PGFANOUT_TEST_PG_DURABLE=1 exec "$root/tests/harness/with-servers.sh" "$0" "$@"
fi
seconds=${1:-15}
runs=${2:-3}
rows=100000
pgbin=${PGFANOUT_TEST_PGBIN:-/usr/lib/postgresql/15/bin}

bench_scratch_db
work=$(mktemp -d "${TMPDIR:-/tmp}/pgfanout-bench.XXXXXX")
cleanup() {
  bench_cleanup
  rm -rf "$work"
}
trap cleanup EXIT

bench_accounts_table "$rows"

bench_listen bench_accounts_changed

# The floor for any NOTIFY-based watch: the same UPDATE sending, in the same statement, one NOTIFY
# of a payload about as long as the per-row watch's (300 bytes), no trigger.
cat >"$work/update_notify.sql" <<SQL
\set id random(1, $rows)
WITH u AS (UPDATE bench_accounts SET balance = balance + 1, updated_at = now() WHERE id = :id RETURNING id)
SELECT pg_notify('bench_accounts_changed', repeat('x', 295) || id) FROM u;
SQL

# tps of one pgbench run of script $2 with $1 clients.
tps() {
  "$pgbin/pgbench" -n -f "$2" -c "$1" -j "$1" -T "$seconds" "$dsn" 2>/dev/null |
    awk '/^tps = / {printf "%.0f\n", $3}'
}
# $1: pgfanout.native for the watch() call $2.
watch() {
  psql "$dsn" -X -q -v ON_ERROR_STOP=1 -c "SELECT pgfanout.unwatch('bench_accounts')" >/dev/null
  if [ -n "$2" ]; then psql "$dsn" -X -q -v ON_ERROR_STOP=1 -c "SET pgfanout.native = $1" -c "$2" >/dev/null; fi
  psql "$dsn" -X -q -c "CHECKPOINT" >/dev/null
}

have_native=$(psql "$dsn" -XAt -c "SELECT pgfanout.native_enabled()")
# name|pgfanout.native|watch() call|pgbench script
cases=("base|off||$work/update.sql"
       "notify|off||$work/update_notify.sql"
       "row|off|SELECT pgfanout.watch('bench_accounts')|$work/update.sql"
       "stmt|off|SELECT pgfanout.watch('bench_accounts', per_statement => true)|$work/update.sql")
if [ "$have_native" = t ]; then
  cases+=("native|on|SELECT pgfanout.watch('bench_accounts')|$work/update.sql")
fi
# Runs go round all the cases in turn (the disk's and the machine's ups and downs over the
# minutes this takes fall on every case alike); each case reports its median.
declare -A runs_of result
for clients in 1 8; do
  for _ in $(seq 1 "$runs"); do
    for c in "${cases[@]}"; do
      IFS='|' read -r name native call script <<<"$c"
      watch "$native" "$call"
      runs_of[$name,$clients]+="$(tps "$clients" "$script") "
    done
  done
  for name in base notify row stmt native; do
    result[$name,$clients]=-
    if [ -n "${runs_of[$name,$clients]:-}" ]; then
      result[$name,$clients]=$(tr ' ' '\n' <<<"${runs_of[$name,$clients]}" | grep . | bench_median)
    fi
  done
done

echo "pgbench single-row UPDATE, median tps of $runs runs of ${seconds}s, a LISTEN-ing session connected"
echo "(PostgreSQL $(psql "$dsn" -XAtc 'SHOW server_version'), fsync=$(psql "$dsn" -XAtc 'SHOW fsync'), synchronous_commit=$(psql "$dsn" -XAtc 'SHOW synchronous_commit'); load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-32s %10s %10s\n' "" "1 writer" "8 writers"
printf '%-32s %10s %10s\n' "no trigger (baseline)" "${result[base,1]}" "${result[base,8]}" \
  "no trigger, a NOTIFY in the txn" "${result[notify,1]}" "${result[notify,8]}" \
  "per-row watch" "${result[row,1]}" "${result[row,8]}" \
  "per-statement watch" "${result[stmt,1]}" "${result[stmt,8]}" \
  "per-row watch, native" "${result[native,1]}" "${result[native,8]}"
awk -v b1="${result[base,1]}" -v b8="${result[base,8]}" -v f1="${result[notify,1]}" -v f8="${result[notify,8]}" -v r1="${result[row,1]}" -v r8="${result[row,8]}" \
    -v s1="${result[stmt,1]}" -v s8="${result[stmt,8]}" -v n1="${result[native,1]}" -v n8="${result[native,8]}" 'BEGIN {
  printf "%-32s %9.2fx %9.2fx\n", "NOTIFY only / baseline", f1 / b1, f8 / b8
  printf "%-32s %9.2fx %9.2fx\n", "per-row / baseline", r1 / b1, r8 / b8
  printf "%-32s %9.2fx %9.2fx\n", "per-statement / baseline", s1 / b1, s8 / b8
  if (n1 != "-") printf "%-32s %9.2fx %9.2fx\n", "per-row, native / baseline", n1 / b1, n8 / b8
}'
