# Sourced by scripts/install-deps.sh and scripts/preflight.sh, so both read scripts/deps.txt (or
# $PGFANOUT_DEPS_TABLE) the same way. Pure bash: the preflight still answers on a PATH that lacks
# the tools it looks for.
#
#   deps_select PROFILE...   fills deps_packages, deps_checks and deps_flags (one entry per row of
#                            those profiles) and deps_wanted (" build test ... "); returns 2, with
#                            a message on stderr, for an unknown profile or an unreadable table.
#                            PGFANOUT_WITH_BROWSER=0 drops the browser profile.
deps_table=${PGFANOUT_DEPS_TABLE:-$(cd "${BASH_SOURCE[0]%/*}" && pwd)/deps.txt}

deps_select() {
  local p package profiles checks flag use
  local -a plist
  deps_packages=() deps_checks=() deps_flags=() deps_wanted=" "
  for p in "$@"; do
    case $p in
      build | test | fuzz | browser | demo | bench | package) ;;
      *) echo "unknown profile '$p' (build test fuzz browser demo bench package)" >&2; return 2 ;;
    esac
    if [ "$p" = browser ] && [ "${PGFANOUT_WITH_BROWSER:-1}" = 0 ]; then continue; fi
    deps_wanted+="$p "
  done
  if [ ! -r "$deps_table" ]; then
    echo "cannot read $deps_table" >&2
    return 2
  fi
  while read -r package profiles checks flag; do
    case $package in '' | '#'*) continue ;; esac
    use=0
    IFS=, read -ra plist <<<"$profiles"
    for p in "${plist[@]}"; do [[ $deps_wanted == *" $p "* ]] && use=1; done
    [ "$use" = 1 ] || continue
    deps_packages+=("$package")
    deps_checks+=("$checks")
    deps_flags+=("${flag:-}")
  done <"$deps_table"
}
