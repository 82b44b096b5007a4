#!/usr/bin/env bash
# Checks, in seconds, that every external command and file a make target relies on is there,
# before anything is built or started. Reads scripts/deps.txt, the one list of packages that
# scripts/install-deps.sh installs, and prints one line per missing thing: what is missing, the
# Debian package that provides it, and that install-deps.sh should have installed it.
#
#   scripts/preflight.sh PROFILE...     # build test fuzz browser demo bench package (see scripts/deps.txt)
#
# Exit 0 when everything is there, 1 otherwise. PGFANOUT_WITH_BROWSER=0 drops the browser profile.
# Pure bash (no external command), so it still answers on a PATH that lacks the tools it looks for.
set -uo pipefail
src=${BASH_SOURCE[0]}
case $src in */*) here=${src%/*} ;; *) here=. ;; esac
source "$here/deps-table.sh"

if [ $# -eq 0 ]; then
  echo "usage: scripts/preflight.sh PROFILE... (build test fuzz browser demo bench package)" >&2
  exit 2
fi
deps_select "$@" || exit 2
wanted=$deps_wanted

missing=0
checked=0
for i in "${!deps_packages[@]}"; do
  package=${deps_packages[$i]}
  checks=${deps_checks[$i]}
  IFS=, read -ra clist <<<"$checks"
  for c in "${clist[@]}"; do
    checked=$((checked + 1))
    what=${c#*:}
    case $c in
      cmd:*)
        command -v "$what" >/dev/null 2>&1 && continue
        echo "preflight: $what is missing (no such command on PATH); Debian package $package provides it, and scripts/install-deps.sh should have installed it"
        ;;
      file:*)
        compgen -G "$what" >/dev/null && continue
        echo "preflight: $what is missing (no such file); Debian package $package provides it, and scripts/install-deps.sh should have installed it"
        ;;
      *)
        echo "preflight: $deps_table: bad check '$c' for $package" >&2
        ;;
    esac
    missing=$((missing + 1))
  done
done

if [ "$missing" -gt 0 ]; then
  echo "preflight: $missing of $checked checks failed for:${wanted% } — run scripts/install-deps.sh as root (or reinstall the packages named above)"
  exit 1
fi
echo "preflight: ok ($checked checks for:$wanted)"
