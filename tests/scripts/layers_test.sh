#!/usr/bin/env bash
# scripts/check-layers.sh: the daemon as it is passes; a copy of it with a back-edge (a rules file
# including a hub header), a same-layer include (pg including redis) or a folder missing from
# daemon/layers.txt fails, naming the file, the line and the rule.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
check=$root/scripts/check-layers.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
expect() {  # expect NAME WANT_RC PATTERN OUTPUT RC
  if [ "$5" = "$2" ] && grep -qE -- "$3" <<<"$4"; then
    passed=$((passed + 1)); echo "ok: $1"
  else
    failed=$((failed + 1)); echo "FAILED: $1 (rc $5)"; sed 's/^/    /' <<<"$4"
  fi
}

out=$("$check" "$root" 2>&1); rc=$?
expect "the daemon keeps its layers" 0 '^check-layers: ok$' "$out" "$rc"

copy() { rm -rf "$work/tree"; mkdir -p "$work/tree"; cp -r "$root/daemon" "$work/tree/"; }

copy
printf '#include "hub/Hub.hpp"\n' >>"$work/tree/daemon/rules/Router.cpp"
out=$("$check" "$work/tree" 2>&1); rc=$?
expect "a back-edge is named" 1 '^daemon/rules/Router.cpp:[0-9]+: rules includes hub \(a higher layer' "$out" "$rc"

copy
printf '#include "redis/RedisUrl.hpp"\n' >>"$work/tree/daemon/pg/ConnInfo.cpp"
out=$("$check" "$work/tree" 2>&1); rc=$?
expect "a same-layer include is named" 1 'pg includes redis \(an area of the same layer' "$out" "$rc"

copy
mkdir "$work/tree/daemon/newarea"
out=$("$check" "$work/tree" 2>&1); rc=$?
expect "a folder missing from the table is named" 1 '^daemon/newarea/: not in daemon/layers.txt' "$out" "$rc"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
