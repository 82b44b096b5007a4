#!/usr/bin/env bash
# Checks daemon/layers.txt: every #include "area/..." in daemon/ names the file's own area or an
# area on a lower line of the table; every folder of daemon/ is in the table. Prints one line per
# violation (file:line: what it includes and why that is not allowed) and exits 1 if there is any.
#
#   scripts/check-layers.sh [ROOT]     # ROOT: the source tree (default: this script's ../)
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
table=$root/daemon/layers.txt
declare -A rank
n=0
while read -r line; do
  case $line in '' | '#'*) continue ;; esac
  for area in $line; do rank[$area]=$n; done
  n=$((n + 1))
done <"$table"

bad=0
for dir in "$root"/daemon/*/; do
  area=$(basename "$dir")
  if [ -z "${rank[$area]+x}" ]; then
    echo "daemon/$area/: not in daemon/layers.txt"
    bad=$((bad + 1))
  fi
done
while IFS=: read -r file line include; do
  rel=${file#"$root"/}
  area=$(cut -d/ -f2 <<<"$rel")
  target=$(sed -E 's/.*#include "([^/"]+)\/.*/\1/' <<<"$include")
  [ "$target" = "$area" ] && continue
  [ -n "${rank[$area]+x}" ] || continue  # reported above
  if [ -z "${rank[$target]+x}" ]; then
    echo "$rel:$line: includes \"$target/...\", an area not in daemon/layers.txt"
    bad=$((bad + 1))
  elif [ "${rank[$target]}" -ge "${rank[$area]}" ]; then
    why="a higher layer"
    [ "${rank[$target]}" -eq "${rank[$area]}" ] && why="an area of the same layer"
    echo "$rel:$line: $area includes $target ($why; see daemon/layers.txt)"
    bad=$((bad + 1))
  fi
done < <(grep -rnE '^#include "[a-z_]+/' "$root"/daemon --include='*.cpp' --include='*.hpp')

if [ "$bad" -gt 0 ]; then
  echo "check-layers: $bad violation(s)"
  exit 1
fi
echo "check-layers: ok"
