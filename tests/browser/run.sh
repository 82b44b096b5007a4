#!/usr/bin/env bash
# Browser tests of the chat page (tests/browser/*.test.mjs): Debian's chromium driven by
# playwright-core, run with node's built-in test runner.
#
# Needs the servers of tests/harness/with-servers.sh (PGFANOUT_TEST_DSN, PGFANOUT_TEST_REDIS_*);
# creates its own database there, applies examples/chat/schema.sql, installs rules/chat.yaml and
# runs the daemon on a free port for the duration of the tests.
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

cd "$here"
if [ ! -d node_modules/playwright-core ]; then npm ci --no-audit --no-fund --loglevel=error; fi
mkdir -p artifacts

work=$(mktemp -d)
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null; fi
  cp "$work/daemon.log" artifacts/daemon.log 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

db=pgfanout_browser_$$
psql "$PGFANOUT_TEST_DSN" -qc "CREATE DATABASE $db" >/dev/null
export PGFANOUT_DSN="$PGFANOUT_TEST_DSN dbname=$db"
export PGFANOUT_REDIS="$PGFANOUT_TEST_REDIS_URL"
export PGFANOUT_STATIC="$root/examples/chat/web"
export PGFANOUT_JWT_SECRET=$(head -c 32 /dev/urandom | base64)
port=$((20000 + RANDOM % 30000))
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((20000 + RANDOM % 30000)); done
export PGFANOUT_HTTP="127.0.0.1:$port"

psql "$PGFANOUT_DSN" -v ON_ERROR_STOP=1 -q -f "$root/examples/chat/schema.sql"
"$bin" install --config "$root/rules/chat.yaml" >/dev/null
"$bin" run --config "$root/rules/chat.yaml" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 100); do grep -q "ready" "$work/daemon.log" && break; sleep 0.1; done
grep -q "ready" "$work/daemon.log" || { cat "$work/daemon.log"; exit 1; }

export CHAT_URL="http://127.0.0.1:$port/" CHROMIUM="$chromium"
node --test --test-concurrency=1 "$here"/*.test.mjs
