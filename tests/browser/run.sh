#!/usr/bin/env bash
# Browser tests of the example pages and the JavaScript client (tests/browser/*.test.mjs): Debian's chromium driven by
# playwright-core, run with node's built-in test runner.
#
# Needs the servers of tests/harness/with-servers.sh (PGFANOUT_TEST_DSN, PGFANOUT_TEST_REDIS_*);
# creates its own database there, applies the chat and location examples' SQL, installs
# rules/chat.yaml and rules/location.yaml and runs a daemon for each on a free port for the
# duration of the tests (their logs end up in artifacts/).
#
#   tests/harness/with-servers.sh tests/browser/run.sh [build/pgfanout]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-${PGFANOUT_BIN:-$root/build/pgfanout}}
: "${PGFANOUT_TEST_DSN:?run under tests/harness/with-servers.sh}"
chromium=${CHROMIUM:-/usr/bin/chromium}
for tool in node npm psql redis-cli "$chromium"; do
  command -v "$tool" >/dev/null || { echo "browser tests: $tool is missing (scripts/install-deps.sh)"; exit 1; }
done

bin=$(realpath "$bin")
cd "$here"
if [ ! -d node_modules/playwright-core ]; then npm ci --no-audit --no-fund --loglevel=error; fi
mkdir -p artifacts

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  cp "$work"/*.log artifacts/ 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

db=pgfanout_browser_$$
psql "$PGFANOUT_TEST_DSN" -qc "CREATE DATABASE $db" >/dev/null
export PGFANOUT_DSN="$PGFANOUT_TEST_DSN dbname=$db"
export PGFANOUT_REDIS="$PGFANOUT_TEST_REDIS_URL"
export PGFANOUT_CLIENT_JS="$root/clients/js"
export PGFANOUT_JWT_SECRET=$(head -c 32 /dev/urandom | base64)
free_port() {
  local p=$((20000 + RANDOM % 30000))
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((20000 + RANDOM % 30000)); done
  echo "$p"
}
# start NAME CONFIG STATIC_DIR: runs a daemon on a free port; sets $url to its address
start() {
  local port
  port=$(free_port)
  PGFANOUT_HTTP="127.0.0.1:$port" PGFANOUT_STATIC="$3" "$bin" run --config "$2" >"$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q "ready" "$work/$1.log" && break; sleep 0.1; done
  grep -q "ready" "$work/$1.log" || { cat "$work/$1.log" >&2; return 1; }
  url="http://127.0.0.1:$port/"
}

# The chat (rules/chat.yaml) and the location feed (rules/location.yaml) share one database.
psql "$PGFANOUT_DSN" -v ON_ERROR_STOP=1 -q -f "$root/examples/chat/schema.sql"
psql "$PGFANOUT_DSN" -v ON_ERROR_STOP=1 -q -f "$root/examples/location/schema.sql" \
  -f "$root/examples/location/seed_trigger.sql" -f "$root/examples/location/people.sql"
"$bin" install --config "$root/rules/chat.yaml" >/dev/null
"$bin" install --config "$root/rules/location.yaml" >/dev/null
start chat-daemon "$root/rules/chat.yaml" "$root/examples/chat/web"
CHAT_URL=$url
start location-daemon "$root/rules/location.yaml" "$root/examples/location/web"
LOCATION_URL=$url
export CHAT_URL LOCATION_URL CHROMIUM="$chromium" PGFANOUT_BIN="$bin"
node --test --test-concurrency=1 "$here"/*.test.mjs
