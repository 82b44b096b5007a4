#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and runs each for a few
# seconds over a copy of its checked-in corpus (fuzz/corpus/<name without fuzz_>). Any crash,
# leak, sanitizer report or timeout fails. FUZZ_SECONDS sets the time per target (default 5);
# a crashing input is left in build-fuzz/crashes/ to be turned into a regression test.
# FUZZ_SEED (default 1) makes the short run repeatable, so `make test` gives the same answer every
# time; FUZZ_SEED=0 lets libFuzzer pick a new seed (for longer, exploratory runs).
set -euo pipefail
cd "$(dirname "$0")/.."
preflight=$(scripts/preflight.sh fuzz) || { echo "$preflight"; exit 1; }
seconds=${FUZZ_SECONDS:-5}
seed=${FUZZ_SEED:-1}
build=${FUZZ_BUILD:-build-fuzz}
jobs=${JOBS:-2}

cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPGFANOUT_FUZZ=ON -DPGFANOUT_TESTS=OFF >/dev/null
targets=$(cd fuzz && ls fuzz_*.cpp | sed 's/\.cpp$//')
# shellcheck disable=SC2086
cmake --build "$build" -j"$jobs" --target $targets

mkdir -p "$build/crashes"
failed=0
passed=0
for t in $targets; do
  corpus_src="fuzz/corpus/${t#fuzz_}"
  work=$(mktemp -d)
  [ -d "$corpus_src" ] && cp -r "$corpus_src/." "$work/"
  if "$build/fuzz/$t" "$work" -seed="$seed" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$build/crashes/$t-" -print_final_stats=1 >"$build/$t.log" 2>&1; then
    echo "fuzz: $t ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$t.log" | awk '{print $2}') runs)"
    passed=$((passed + 1))
  else
    echo "fuzz: $t FAILED; see $build/$t.log and $build/crashes/"
    tail -30 "$build/$t.log"
    failed=$((failed + 1))
  fi
  rm -rf "$work"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
