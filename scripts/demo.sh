#!/usr/bin/env bash
# `make demo`: runs the chat example end to end on a throwaway PostgreSQL and Redis (started by the
# test harness, removed afterwards): applies examples/chat/schema.sql, installs rules/chat.yaml's
# triggers, starts the daemon serving the chat page (and a second one serving the location map of
# examples/location with rules/location.yaml), and prints the URLs to open. On a terminal it
# keeps running until Ctrl-C; without one (CI) it registers two users, sends a message through
# psql, checks that the daemon pushed it and evicted the receiver's cached inbox, and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
preflight=$(scripts/preflight.sh build demo) || { echo "$preflight"; exit 1; }
bin=${1:-build/pgfanout}
if [ -z "${PGFANOUT_TEST_DSN:-}" ]; then
  exec tests/harness/with-servers.sh "$0" "$bin"
fi

work=$(mktemp -d)
daemon_pid=""
location_pid=""
cleanup() {
  for pid in $daemon_pid $location_pid; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping"; exit 0' INT TERM

port=8080
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
location_port=$((port + 1))
while (exec 3<>"/dev/tcp/127.0.0.1/$location_port") 2>/dev/null; do location_port=$((location_port + 1)); done

psql "$PGFANOUT_TEST_DSN" -qc "CREATE DATABASE pgfanout_demo" >/dev/null
export PGFANOUT_DSN="$PGFANOUT_TEST_DSN dbname=pgfanout_demo"
export PGFANOUT_REDIS="$PGFANOUT_TEST_REDIS_URL"
export PGFANOUT_HTTP="127.0.0.1:$port"
export PGFANOUT_STATIC="$PWD/examples/chat/web"
export PGFANOUT_CLIENT_JS="$PWD/clients/js"
export PGFANOUT_JWT_SECRET=${PGFANOUT_JWT_SECRET:-$(head -c 32 /dev/urandom | base64)}
redis() { redis-cli -p "$PGFANOUT_TEST_REDIS_PORT" "$@"; }
sql() { psql "$PGFANOUT_DSN" -v ON_ERROR_STOP=1 -qAtc "$1"; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "The chat schema (examples/chat/schema.sql)"
psql "$PGFANOUT_DSN" -v ON_ERROR_STOP=1 -q -f examples/chat/schema.sql
echo "  schema chat: users, friends, messages and the chat.* functions"

step "Check and install rules/chat.yaml: the trigger generators and its watch: entries"
"$bin" check --config rules/chat.yaml
"$bin" install --config rules/chat.yaml

step "Start the daemon"
"$bin" run --config rules/chat.yaml >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 100); do grep -q "ready" "$work/daemon.log" && break; sleep 0.1; done
grep -q "ready" "$work/daemon.log" || { cat "$work/daemon.log"; exit 1; }
sed 's/^/  daemon: /' "$work/daemon.log"

step "The location feed (examples/location, rules/location.yaml) on a second port"
psql "$PGFANOUT_DSN" -v ON_ERROR_STOP=1 -q -f examples/location/schema.sql \
  -f examples/location/seed_trigger.sql -f examples/location/people.sql
"$bin" install --config rules/location.yaml
PGFANOUT_HTTP="127.0.0.1:$location_port" PGFANOUT_STATIC="$PWD/examples/location/web" \
  "$bin" run --config rules/location.yaml >"$work/location.log" 2>&1 &
location_pid=$!
for _ in $(seq 1 100); do grep -q "ready" "$work/location.log" && break; sleep 0.1; done
grep -q "ready" "$work/location.log" || { cat "$work/location.log"; exit 1; }
echo "  map of people: http://127.0.0.1:$location_port/"

url="http://127.0.0.1:$port/"
if [ -t 0 ] && [ -z "${CI:-}" ]; then
  step "The chat is running; Ctrl-C stops it and the servers"
  echo "  open $url in two browser windows (or one normal and one private window),"
  echo "  register a user in each and write to each other."
  echo "  metrics: ${url}metrics   health: ${url}healthz"
  echo "  psql \"$PGFANOUT_DSN\"        redis-cli -p $PGFANOUT_TEST_REDIS_PORT"
  echo "  try: SELECT * FROM chat.send(1, 'bob', 'hello from psql');"
  echo "  the map: http://127.0.0.1:$location_port/   move people: examples/location/move.sh '$PGFANOUT_DSN'"
  tail -n 0 -f "$work/daemon.log" | sed 's/^/  daemon: /' &
  wait "$daemon_pid"
  exit 0
fi

step "Scripted check: the page is served"
curl -sf "$url" | grep -q "pgfanout chat" && echo "  GET $url: the chat page"
curl -sf "${url}pgfanout.js" | grep -q "export function connect" &&
  echo "  GET ${url}pgfanout.js: the JavaScript client the page imports (clients/js)"
curl -sf "http://127.0.0.1:$location_port/" | grep -q "People on a map" &&
  echo "  GET http://127.0.0.1:$location_port/: the map page"

step "Register ann and bob, cache bob's inbox, send bob a message through psql"
ann=$(sql "SELECT user_id FROM chat.register('ann', 'secret-ann', 'ann@example.org')")
bob=$(sql "SELECT user_id FROM chat.register('bob', 'secret-bob', 'bob@example.org')")
redis SET "inbox:$bob" '[]' >/dev/null
echo "  ann = user $ann, bob = user $bob; cached: inbox:$bob"
msg=$(sql "SELECT message_id FROM chat.send($ann, 'bob', 'hello bob')")
for _ in $(seq 1 50); do
  grep -q "message $msg from ann to user $bob" "$work/daemon.log" && [ "$(redis EXISTS "inbox:$bob")" = 0 ] && break
  sleep 0.1
done
grep "message $msg from ann" "$work/daemon.log" | sed 's/^/  daemon: /' ||
  { echo "demo: the daemon did not handle message $msg"; cat "$work/daemon.log"; exit 1; }
[ "$(redis EXISTS "inbox:$bob")" = 0 ] ||
  { echo "demo: inbox:$bob was not evicted"; cat "$work/daemon.log"; exit 1; }
echo "  inbox:$bob was evicted"
curl -s "${url}metrics" | grep -E '^pgfanout_(notifications|actions)_total' | sed 's/^/  /' || true
echo "demo: done"
