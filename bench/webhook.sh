#!/usr/bin/env bash
# Webhook deliveries per second and enqueue -> sent latency against a local keep-alive sink,
# with a raw Beast client against the same sink as the baseline. Builds what it needs and starts
# a throwaway PostgreSQL for the durable part.
#
#   bench/webhook.sh [memory_count] [durable_count]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
source "$root/bench/lib.sh"
bench_preflight
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target pgfanout webhook_bench >/dev/null
exec "$root/tests/harness/with-servers.sh" "$build/tests/webhook_bench" "$@"
