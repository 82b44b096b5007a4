#!/usr/bin/env bash
# `make demo`: runs pgfanout end to end on a throwaway PostgreSQL and Redis (started by the test
# harness, removed afterwards). Shows a NOTIFY evicting Redis keys, then keeps the daemon running
# for you to try (Ctrl-C stops everything). Without a terminal it runs the scripted part and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/pgfanout}
if [ -z "${PGFANOUT_TEST_DSN:-}" ]; then
  exec tests/harness/with-servers.sh "$0" "$bin"
fi

work=$(mktemp -d)
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping"; exit 0' INT TERM

port=8080
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

psql "$PGFANOUT_TEST_DSN" -qc "CREATE DATABASE pgfanout_demo" >/dev/null
export PGFANOUT_DSN="$PGFANOUT_TEST_DSN dbname=pgfanout_demo"
export PGFANOUT_REDIS="$PGFANOUT_TEST_REDIS_URL"
export PGFANOUT_HTTP="127.0.0.1:$port"
redis() { redis-cli -p "$PGFANOUT_TEST_REDIS_PORT" "$@"; }
sql() { psql "$PGFANOUT_DSN" -qAtc "$1"; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Check and install: the trigger generators and the config's watch: entries"
psql "$PGFANOUT_DSN" -q -f examples/demo/schema.sql
"$bin" check --config rules/demo.yaml
"$bin" install --config rules/demo.yaml

step "Start the daemon"
"$bin" run --config rules/demo.yaml >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 100); do grep -q "ready" "$work/daemon.log" && break; sleep 0.1; done
grep -q "ready" "$work/daemon.log" || { cat "$work/daemon.log"; exit 1; }
sed 's/^/  daemon: /' "$work/daemon.log"

step "An application caches user 1 in Redis"
redis SET user:1 '{"id":1,"username":"ann"}' >/dev/null
redis SET user:name:ann 1 >/dev/null
redis SET user:2 '{"id":2,"username":"bob"}' >/dev/null
echo "  keys: $(redis KEYS 'user:*' | sort | tr '\n' ' ')"

step "UPDATE demo.users SET username = 'anne' WHERE id = 1"
sql "UPDATE demo.users SET username = 'anne' WHERE id = 1"
for _ in $(seq 1 50); do [ "$(redis EXISTS user:1)" = 0 ] && break; sleep 0.05; done
echo "  keys: $(redis KEYS 'user:*' | sort | tr '\n' ' ')"
if [ "$(redis EXISTS user:1)" = 0 ] && [ "$(redis EXISTS user:name:ann)" = 0 ] &&
   [ "$(redis EXISTS user:2)" = 1 ]; then
  echo "  user:1 and user:name:ann were evicted; user:2 is still cached."
else
  echo "demo: the eviction did not happen"; cat "$work/daemon.log"; exit 1
fi
grep "user 1 changed" "$work/daemon.log" | sed 's/^/  daemon: /'

step "Health and metrics"
curl -s "http://127.0.0.1:$port/healthz"; echo
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^pgfanout_(notifications|actions)_total' | sed 's/^/  /'

if [ -t 0 ] && [ -z "${CI:-}" ]; then
  step "The daemon keeps running; Ctrl-C stops it and the servers"
  echo "  http://127.0.0.1:$port/healthz   http://127.0.0.1:$port/metrics"
  echo "  psql \"$PGFANOUT_DSN\"        redis-cli -p $PGFANOUT_TEST_REDIS_PORT"
  echo "  try: UPDATE demo.users SET email = 'x@example.org' WHERE id = 2;  then GET user:2"
  tail -f "$work/daemon.log" | sed 's/^/  daemon: /' &
  wait "$daemon_pid"
fi
echo "demo: done"
