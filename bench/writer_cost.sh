#!/usr/bin/env bash
# What each source of changes costs the writers: pgbench, each transaction one UPDATE of a random
# row of a 10,000-row table, 1 / 8 / 32 writers, PostgreSQL with its production defaults (fsync,
# synchronous_commit and full_page_writes on: PGFANOUT_TEST_PG_DURABLE=1). Four cases:
#
#   no trigger      the baseline
#   notify          a `via: notify` watch (the trigger) with the daemon listening and evicting
#                   one Redis key per change (evict: "bench:acct:{id}")
#   wal             a `via: wal` watch (no trigger) with the daemon streaming from its slot and
#                   evicting one key per change
#   pg_recvlogical  no trigger, a pgoutput slot on the same publication consumed by pg_recvlogical
#                   (the cost of logical decoding itself, with a consumer that does nothing), the
#                   table with the replica identity `pgfanout install` gave it for the wal case
#   recv-default    the same with REPLICA IDENTITY DEFAULT (install sets FULL when a rule's key
#                   template is rendered for the old row too, as evict: "bench:acct:{id}" is)
#
# The no trigger and notify cases run with REPLICA IDENTITY DEFAULT.
#
#   bench/writer_cost.sh [seconds] [runs] [BUILD_DIR]   # 8 s, 3 runs, build/; a throwaway server
#
# Each run goes through the four cases in turn (the cases' samples are spread over the same
# period), each case through 1, 8 and 32 writers; prints the median tps per point and the ratios
# wal/pg_recvlogical, pg_recvlogical/no trigger, notify/no trigger, wal/no trigger. For the WAL
# case it also prints how long after pgbench ended the daemon had confirmed everything (its
# pgfanout_wal_confirmed_lsn passing a pgfanout.emit marker committed after pgbench) and its RSS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${3:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
source "$root/bench/lib.sh"
if [ -z "${PGFANOUT_TEST_DSN:-}" ]; then
  bench_preflight
  bench_need_binary "$build/pgfanout"
  PGFANOUT_TEST_PG_DURABLE=1 exec "$root/tests/harness/with-servers.sh" "$0" "${1:-8}" "${2:-3}" "$build"
fi
seconds=${1:-8}
runs=${2:-3}
rows=10000
writers=(1 8 32)
pgbin=${PGFANOUT_TEST_PGBIN:-/usr/lib/postgresql/15/bin}
slot=bench_pgfanout
recv_slot=bench_recvlogical
publication=bench_pub
recv_pid=

bench_scratch_db
work=$(mktemp -d "${TMPDIR:-/tmp}/pgfanout-bench.XXXXXX")
cleanup() {
  if [ -n "$recv_pid" ]; then kill "$recv_pid" 2>/dev/null || true; fi
  bench_cleanup
  rm -rf "$work"
}
trap cleanup EXIT

q() { psql "$dsn" -X -q -v ON_ERROR_STOP=1 "$@"; }
qv() { psql "$dsn" -X -At -v ON_ERROR_STOP=1 -c "$1"; }

bench_accounts_table "$rows"

# The daemon's configs: the same rule, the table watched through either source.
config() {  # config notify|wal
  cat <<YAML
postgres: {dsn: "$dsn"}
redis: {url: "$PGFANOUT_TEST_REDIS_URL"}
http: {listen: 127.0.0.1:0}
log: {level: info}
YAML
  if [ "$1" = wal ]; then echo "wal: {slot: $slot, publication: $publication}"; fi
  cat <<YAML
watch:
  - table: public.bench_accounts
    channel: bench_accounts_changed
    via: $1
rules:
  - name: bench
    channel: bench_accounts_changed
    actions:
      - evict: "bench:acct:{id}"
YAML
}
config notify >"$work/notify.yaml"
config wal >"$work/wal.yaml"

drop_slot() {  # the walsender of a consumer that just stopped may take a moment to go
  for _ in $(seq 1 50); do
    [ "$(qv "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$1' AND active")" = 0 ] && break
    sleep 0.1
  done
  q -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$1'" >/dev/null
}
# Each case starts from the same state: no trigger, no slot, the table's default replica
# identity, the table vacuumed, a checkpoint.
reset() {
  q -c "SELECT pgfanout.unwatch('bench_accounts')" -c "ALTER TABLE bench_accounts REPLICA IDENTITY ${1:-DEFAULT}" >/dev/null
  drop_slot "$slot"
  drop_slot "$recv_slot"
  q -c "VACUUM bench_accounts" -c "CHECKPOINT" >/dev/null
}

# Sum of every series of a metric in the daemon's /metrics.
metric() {
  bench_alive
  curl -fsS "http://127.0.0.1:$http_port/metrics" |
    awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {printf "%.0f\n", s}'
}
start_daemon() {  # start_daemon notify|wal
  "$build/pgfanout" install --config "$work/$1.yaml" >"$work/install-$1.log" 2>&1 ||
    { echo "bench: pgfanout install failed:" >&2; cat "$work/install-$1.log" >&2; exit 1; }
  bench_start "pgfanout ($1)" "$work/daemon-$1.log" "$build/pgfanout" run --config "$work/$1.yaml"
  bench_wait_log "$work/daemon-$1.log" "HTTP listening on"
  if [ "$1" = wal ]; then
    bench_wait_log "$work/daemon-$1.log" "WAL source: streaming from slot" 20
  else
    bench_wait_log "$work/daemon-$1.log" "ready" 20
  fi
  http_port=$(sed -n 's/.*HTTP listening on [0-9.]*:\([0-9]*\).*/\1/p' "$work/daemon-$1.log" | head -1)
}

# One pgbench point: appends "tps transactions" to $work/CASE-CLIENTS.
point() {  # point CASE CLIENTS
  local out
  out=$("$pgbin/pgbench" -n -f "$work/update.sql" -c "$2" -j "$2" -T "$seconds" "$dsn" 2>&1) ||
    { echo "bench: pgbench failed:" >&2; echo "$out" >&2; exit 1; }
  echo "$out" | awk '/^number of transactions actually processed:/ {n = $6}
                     /^tps = / {printf "%.0f %s\n", $3, n}' >>"$work/$1-$2"
}

# After pgbench: commit a marker, wait until the daemon's confirmed position passes it (every
# change before it evicted and acknowledged). Appends the seconds to $work/catchup-CLIENTS.
catch_up() {  # catch_up CLIENTS
  local t0 marker confirmed t1
  t0=$(date +%s.%N)
  marker=$(qv "SELECT pgfanout.emit('bench_marker', '{}'::text) - '0/0'::pg_lsn")
  for _ in $(seq 1 6000); do
    confirmed=$(metric pgfanout_wal_confirmed_lsn)
    if awk -v c="$confirmed" -v m="$marker" 'BEGIN {exit !(c + 0 >= m + 0)}'; then
      t1=$(date +%s.%N)
      awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", b - a}' >>"$work/catchup-$1"
      return 0
    fi
    bench_alive
    sleep 0.02
  done
  echo "bench: the daemon did not confirm the marker within 120 s" >&2
  sed 's/^/  | /' "$bench_log" >&2
  exit 1
}

recvlogical() {  # recvlogical CASE IDENTITY
  reset "$2"
  "$pgbin/pg_recvlogical" -d "$dsn" --slot "$recv_slot" --create-slot -P pgoutput
  "$pgbin/pg_recvlogical" -d "$dsn" --slot "$recv_slot" --start -o proto_version=1 \
    -o publication_names="$publication" -f /dev/null 2>"$work/recvlogical.log" &
  recv_pid=$!
  sleep 1
  kill -0 "$recv_pid" 2>/dev/null || { echo "bench: pg_recvlogical exited:" >&2; cat "$work/recvlogical.log" >&2; exit 1; }
  for c in "${writers[@]}"; do point "$1" "$c"; done
  kill "$recv_pid"
  wait "$recv_pid" 2>/dev/null || true
  recv_pid=
}

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
q -c "CREATE PUBLICATION $publication FOR TABLE bench_accounts" >/dev/null
for run in $(seq 1 "$runs"); do
  # no trigger
  reset
  for c in "${writers[@]}"; do point base "$c"; done

  # notify: the trigger, the daemon listening and evicting
  reset
  start_daemon notify
  for c in "${writers[@]}"; do point notify "$c"; done
  echo "run $run notify: $(metric pgfanout_notifications_total) notifications, $(metric pgfanout_actions_total) actions, $(metric pgfanout_redis_keys_sent_total) keys sent to Redis"
  bench_stop

  # wal: no trigger, the daemon streaming and evicting
  reset
  start_daemon wal
  identity=$(qv "SELECT CASE relreplident WHEN 'f' THEN 'FULL' ELSE 'DEFAULT' END FROM pg_class WHERE relname = 'bench_accounts'")
  if [ "$run" = 1 ]; then echo "replica identity of bench_accounts after pgfanout install: $identity"; fi
  for c in "${writers[@]}"; do
    point wal "$c"
    catch_up "$c"
  done
  echo "run $run wal: $(metric pgfanout_wal_events_total) events, $(metric pgfanout_actions_total) actions, $(metric pgfanout_redis_keys_sent_total) keys sent to Redis; RSS $(bench_rss_kb) kB (peak $(bench_hwm_kb) kB)"
  bench_rss_kb >>"$work/rss"
  bench_hwm_kb >>"$work/hwm"
  bench_stop

  # pg_recvlogical: no trigger, a pgoutput slot consumed by a client that writes to /dev/null,
  # with the wal case's replica identity, then with the default one
  recvlogical recv "$identity"
  recvlogical recvdef DEFAULT
  echo "run $run done (load average $(cut -d' ' -f1-3 /proc/loadavg))"
done
reset

med() { awk '{print $1}' "$work/$1" | bench_median; }
declare -A tps
for case in base notify wal recv recvdef; do
  for c in "${writers[@]}"; do tps[$case,$c]=$(med "$case-$c"); done
done

echo
echo "pgbench single-row UPDATE of a random row of $rows, median tps of $runs runs of ${seconds}s"
echo "(PostgreSQL $(qv 'SHOW server_version'), fsync=$(qv 'SHOW fsync'), synchronous_commit=$(qv 'SHOW synchronous_commit'), wal_level=$(qv 'SHOW wal_level'); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-8s %12s %12s %12s %22s %22s\n' writers "no trigger" notify wal "pg_recvlogical" "pg_recvlogical"
printf '%-8s %12s %12s %12s %22s %22s\n' "" "" "" "" "(identity $identity)" "(identity DEFAULT)"
for c in "${writers[@]}"; do
  printf '%-8s %12s %12s %12s %22s %22s\n' "$c" "${tps[base,$c]}" "${tps[notify,$c]}" "${tps[wal,$c]}" "${tps[recv,$c]}" "${tps[recvdef,$c]}"
done
echo
printf '%-8s %19s %26s %19s %16s %29s\n' writers "wal/pg_recvlogical" "pg_recvlogical/no trigger" "notify/no trigger" "wal/no trigger" "recvlogical DEFAULT/no trigger"
for c in "${writers[@]}"; do
  awk -v c="$c" -v b="${tps[base,$c]}" -v n="${tps[notify,$c]}" -v w="${tps[wal,$c]}" -v r="${tps[recv,$c]}" -v d="${tps[recvdef,$c]}" \
    'BEGIN {printf "%-8s %18.2fx %25.2fx %18.2fx %15.2fx %28.2fx\n", c, w / r, r / b, n / b, w / b, d / b}'
done
echo "target at 32 writers: wal/pg_recvlogical >= 0.90x"
echo
echo "WAL case, after pgbench ended, until the daemon had confirmed a marker committed after it (s, each run):"
for c in "${writers[@]}"; do
  printf '  %2s writers: %s (median %s)\n' "$c" "$(tr '\n' ' ' <"$work/catchup-$c")" "$(bench_median <"$work/catchup-$c")"
done
echo "WAL case, daemon RSS after the 32-writer point: $(tr '\n' ' ' <"$work/rss")kB; peak (VmHWM) $(tr '\n' ' ' <"$work/hwm")kB"
echo "every run's tps (the spread says how much the machine moved the medians):"
for case in base notify wal recv recvdef; do
  for c in "${writers[@]}"; do printf '  %-8s %2s writers: %s\n' "$case" "$c" "$(awk '{print $1}' "$work/$case-$c" | tr '\n' ' ')"; done
done
echo "WAL case: $(awk '{n += $2} END {print n}' "$work"/wal-*) changes committed by pgbench over all runs"
