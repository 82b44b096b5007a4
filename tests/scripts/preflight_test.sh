#!/usr/bin/env bash
# scripts/preflight.sh: passes on a complete machine; on a PATH without pg_prove (or with a file
# of the table gone) it fails at once with one line naming the missing thing, the package that
# provides it and install-deps.sh; a bad profile is a usage error. Also checks that
# scripts/deps.txt is well formed and that install-deps.sh and preflight.sh read the same table.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
preflight=$root/scripts/preflight.sh
table=$root/scripts/deps.txt
bash=$(command -v bash)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
check() {  # check NAME CONDITION-RESULT DETAIL
  if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "ok: $1"; else failed=$((failed + 1)); echo "FAILED: $1"; echo "$3" | sed 's/^/    /'; fi
}

# 1. The table: three or four columns, known profiles, known check kinds, if-absent only as flag.
bad=$(awk '!/^#/ && NF {
  if (NF < 3 || NF > 4) { print "line " NR ": " NF " columns"; next }
  n = split($2, ps, ","); for (i = 1; i <= n; i++) if (ps[i] !~ /^(build|test|fuzz|browser|demo|bench|package)$/) print "line " NR ": profile " ps[i]
  n = split($3, cs, ","); for (i = 1; i <= n; i++) if (cs[i] !~ /^(cmd|file):./) print "line " NR ": check " cs[i]
  if (NF == 4 && $4 != "if-absent") print "line " NR ": flag " $4 }' "$table")
check "deps.txt is well formed" "$([ -z "$bad" ]; echo $?)" "$bad"
grep -q "deps-table.sh" "$root/scripts/install-deps.sh" && grep -q "deps-table.sh" "$root/scripts/preflight.sh"
check "install-deps.sh and preflight.sh read deps.txt through one reader" $? "deps-table.sh is not sourced by both"
grep -q '^libtap-parser-sourcehandler-pgtap-perl .*cmd:pg_prove' "$table"
check "pg_prove's package is in the table" $? "libtap-parser-sourcehandler-pgtap-perl / cmd:pg_prove missing from deps.txt"

# 2. This machine (make test ran install-deps.sh first): everything there.
out=$("$preflight" build test fuzz demo bench 2>&1); rc=$?
check "complete machine passes" "$([ $rc = 0 ] && [[ $out == "preflight: ok"* ]]; echo $?)" "rc=$rc: $out"

# 3. A PATH holding every command of the table but pg_prove.
mkdir "$work/bin"
for c in $(awk '!/^#/ && NF { n = split($3, cs, ","); for (i = 1; i <= n; i++) if (cs[i] ~ /^cmd:/) print substr(cs[i], 5) }' "$table"); do
  [ "$c" = pg_prove ] && continue
  p=$(command -v "$c") && ln -sf "$p" "$work/bin/$c"
done
start=$(date +%s%N)
out=$(PATH=$work/bin "$bash" "$preflight" build test fuzz demo bench 2>&1); rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
lines=$(grep -c '^preflight: .* is missing' <<<"$out")
check "without pg_prove: exit 1" "$([ $rc = 1 ]; echo $?)" "rc=$rc: $out"
check "without pg_prove: one line, naming pg_prove, its package and install-deps.sh" \
  "$([ "$lines" = 1 ] && grep -q '^preflight: pg_prove is missing .*libtap-parser-sourcehandler-pgtap-perl.*scripts/install-deps.sh' <<<"$out"; echo $?)" "$out"
echo "    (answered in $ms ms)"
out=$(PATH=$work/bin "$bash" "$preflight" build 2>&1); rc=$?
check "without pg_prove: the build profile does not need it" "$([ $rc = 0 ]; echo $?)" "rc=$rc: $out"

# 4. A file the table names, gone (a copy of the table pointing elsewhere).
sed 's|file:/usr/share/postgresql/15/extension/pgtap.control|file:/nonexistent/pgtap.control|' "$table" >"$work/deps.txt"
out=$(PGFANOUT_DEPS_TABLE=$work/deps.txt "$preflight" test 2>&1); rc=$?
check "missing file named with its package" \
  "$([ $rc = 1 ] && grep -q '^preflight: /nonexistent/pgtap.control is missing .*postgresql-15-pgtap' <<<"$out"; echo $?)" "rc=$rc: $out"

# 5. Usage errors.
"$preflight" nonsense >/dev/null 2>&1; rc=$?
check "unknown profile is a usage error" "$([ $rc = 2 ]; echo $?)" "rc=$rc"
"$preflight" >/dev/null 2>&1; rc=$?
check "no profile is a usage error" "$([ $rc = 2 ]; echo $?)" "rc=$rc"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
