# Shared by the bench/*.sh scripts (sourced, not run). A benchmark must never print figures for a
# daemon that is not running: every check below prints the daemon's log and exits non-zero when
# the process under benchmark did not start or died.
#
#   source "$root/bench/lib.sh"
#   bench_preflight                       # the tools of scripts/deps.txt's build and bench profiles
#   bench_need_binary "$build/pgfanout"   # built? (`make build` first)
#   bench_start NAME LOG CMD...           # starts CMD in the background; bench_pid=its pid
#   bench_wait_log LOG PATTERN [SECONDS]  # waits until LOG matches PATTERN, the process still alive
#   bench_alive                           # still running? else log + exit 1
#   bench_rss_kb / bench_hwm_kb           # VmRSS / VmHWM of the process, after bench_alive
#   bench_reset_hwm                       # VmHWM back to the current RSS (a new peak to measure)
#   bench_stop                            # SIGTERM and wait; fails if it had died meanwhile
#   bench_scratch_db                      # a new database with the trigger SQL: sets db and dsn
#   bench_listen CHANNEL                  # a psql session LISTENing on CHANNEL in the background
#   bench_median                          # the median of the numbers on stdin
#   bench_cleanup                         # for an EXIT trap: stops all of the above

bench_name= bench_log= bench_pid= bench_listener_pid= db= dsn=

bench_preflight() {
  "$root/scripts/preflight.sh" build bench || {
    echo "bench: missing tools (above); scripts/install-deps.sh installs them" >&2
    exit 1
  }
}

bench_need_binary() {
  [ -x "$1" ] || { echo "bench: $1 is missing: run \`make build\` first" >&2; exit 1; }
}

bench_start() {
  bench_name=$1 bench_log=$2
  shift 2
  "$@" >"$bench_log" 2>&1 &
  bench_pid=$!
}

bench_died() {
  local rc=0
  wait "$bench_pid" 2>/dev/null || rc=$?
  echo "bench: $bench_name (pid $bench_pid) is not running (exit status $rc); its log ($bench_log):" >&2
  sed 's/^/  | /' "$bench_log" >&2
  bench_pid=
  exit 1
}

bench_alive() {
  [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null || bench_died
}

bench_wait_log() {
  local log=$1 pattern=$2 seconds=${3:-10} i
  for ((i = 0; i < seconds * 10; i++)); do
    grep -q "$pattern" "$log" 2>/dev/null && { bench_alive; return 0; }
    bench_alive
    sleep 0.1
  done
  echo "bench: $bench_name did not log '$pattern' within $seconds s" >&2
  sed 's/^/  | /' "$log" >&2
  exit 1
}

bench_rss_kb() {
  bench_alive
  awk '/^VmRSS/ {print $2}' "/proc/$bench_pid/status"
}

bench_hwm_kb() {
  bench_alive
  awk '/^VmHWM/ {print $2}' "/proc/$bench_pid/status"
}

bench_reset_hwm() {
  bench_alive
  echo 5 >"/proc/$bench_pid/clear_refs"
}

bench_stop() {
  [ -n "$bench_pid" ] || return 0
  bench_alive
  kill -TERM "$bench_pid" 2>/dev/null
  wait "$bench_pid" 2>/dev/null || true
  bench_pid=
}

# A fresh database on the harness's server (PGFANOUT_TEST_DSN) with the trigger generators
# installed; bench_cleanup drops it.
bench_scratch_db() {
  db="pgfanout_bench_$$_${RANDOM}"
  dsn="$PGFANOUT_TEST_DSN dbname=$db"
  psql "$PGFANOUT_TEST_DSN" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\""
  psql "$dsn" -X -q -v ON_ERROR_STOP=1 -c "$(cat "$root"/sql/triggers/[0-9][0-9][0-9]_*.sql)" >/dev/null
}

# A session that LISTENs on $1 in $dsn and keeps reading, so that notifications really go
# through PostgreSQL's queue (it skips channels nobody listens to); psql reports them after each
# command.
bench_listen() {
  (
    echo "LISTEN $1;"
    while true; do echo "SELECT 1;"; sleep 0.2; done
  ) | psql "$dsn" -X -q >/dev/null 2>&1 &
  bench_listener_pid=$!
  sleep 0.5
}

# bench_accounts(id, name, balance, updated_at) with $1 rows in $dsn, vacuumed, and
# $work/update.sql: pgbench's transaction, one UPDATE of a random row.
bench_accounts_table() {
  psql "$dsn" -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE bench_accounts (id int PRIMARY KEY, name text NOT NULL, balance int NOT NULL,
                             updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO bench_accounts SELECT g, 'account ' || g, 0, now() FROM generate_series(1, $1) g;
VACUUM ANALYZE bench_accounts;
SQL
  cat >"$work/update.sql" <<SQL
\set id random(1, $1)
UPDATE bench_accounts SET balance = balance + 1, updated_at = now() WHERE id = :id;
SQL
}

bench_median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# For an EXIT trap: stop whatever is still running and drop the scratch database, quietly.
bench_cleanup() {
  if [ -n "$bench_pid" ]; then
    kill -TERM "$bench_pid" 2>/dev/null
    wait "$bench_pid" 2>/dev/null || true
    bench_pid=
  fi
  if [ -n "$bench_listener_pid" ]; then kill "$bench_listener_pid" 2>/dev/null || true; fi
  if [ -n "$db" ]; then
    # A database with replication slots cannot be dropped: end their streams and drop them first.
    psql "$PGFANOUT_TEST_DSN" -X -q -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = '$db' AND active_pid IS NOT NULL" >/dev/null 2>&1 || true
    sleep 0.3
    psql "$PGFANOUT_TEST_DSN" -X -q -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$db'" >/dev/null 2>&1 || true
    psql "$PGFANOUT_TEST_DSN" -X -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
