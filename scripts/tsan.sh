#!/usr/bin/env bash
# Builds the daemon and the hub's tests with ThreadSanitizer into BUILD_DIR and runs those tests
# against throwaway servers. TSan writes each report to BUILD_DIR/tsan-reports/; any report fails
# the run (a daemon that races keeps running, so the tests alone might not notice).
#
#   scripts/tsan.sh [BUILD_DIR] [JOBS]          # make tsan
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-tsan}
jobs=${2:-2}
tests=(hub_threads_pgtest hub_pgtest hub_reload_pgtest fault_hub_pgtest topic_hub_test
  event_history_test)

cmake -S "$root" -B "$build" -DPGFANOUT_TSAN=ON -DPGFANOUT_WERROR=ON -DPGFANOUT_ALLOCATOR=glibc \
  >/dev/null
cmake --build "$build" -j"$jobs" --target pgfanout "${tests[@]}"

reports="$build/tsan-reports"
rm -rf "$reports"
mkdir -p "$reports"
# The daemon runs as a child of the tests and inherits this.
export TSAN_OPTIONS="log_path=$reports/report second_deadlock_stack=1 history_size=4"
regex="^($(IFS='|'; echo "${tests[*]}"))\$"
status=0
"$root/tests/harness/with-servers.sh" ctest --test-dir "$build" --output-on-failure \
  --timeout 600 -R "$regex" || status=$?
if compgen -G "$reports/report*" >/dev/null; then
  echo "tsan: ThreadSanitizer reported problems:" >&2
  cat "$reports"/report* >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then exit "$status"; fi
echo "tsan: no ThreadSanitizer report in ${#tests[@]} test programs"
