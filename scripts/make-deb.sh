#!/usr/bin/env bash
# Builds the Debian package from debian/ with dpkg-buildpackage (debhelper), out of the source tree:
# the clone's files (tracked, and new ones git does not ignore) are copied to OUT/src and built
# there, so the clone gets no obj-*/ or debian/pgfanout/ and git status stays clean. Writes to OUT
# (default build-deb/):
#   pgfanout_VERSION_amd64.deb   the package (and its .changes, .buildinfo, the -dbgsym package of
#   debug symbols, and the source package: pgfanout_VERSION.dsc, .tar.xz)
# and prints this build's ccache hits and misses, then the .deb's path, last. `make deb` runs it.
#
# The build uses ccache with the normal build's flags (see debian/rules), so after `make build`
# almost every object is a cache hit. debhelper points HOME at an empty directory, so the cache
# directory is named explicitly.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
case $out/ in "$root"/*) ;; *)
  # ccache's base directory is the clone: a copy outside it would hash other paths and miss.
  echo "make-deb: $out is outside $root; ccache would miss every object" >&2 ;;
esac

version=$(sed -n 's/^project(pgfanout VERSION \([0-9.]*\) .*/\1/p' "$root/CMakeLists.txt")
changelog=$(dpkg-parsechangelog -l "$root/debian/changelog" -S Version)
if [ "$version" != "$changelog" ]; then
  echo "make-deb: CMakeLists.txt says version $version but debian/changelog says $changelog;" \
    "add a debian/changelog entry (dch -v $version)" >&2
  exit 1
fi

src=$out/src
rm -rf "$src" "$out"/pgfanout_* "$out"/pgfanout-dbgsym_* "$out"/postgresql-15-pgfanout*
mkdir -p "$src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked files as they are in the work tree (a file deleted but not yet committed is skipped).
  (cd "$root" && git ls-files -z --cached --others --exclude-standard |
    tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null) | tar -C "$src" -xf -
else
  (cd "$root" && tar --exclude='./build' --exclude='./build-*' --exclude='./node_modules' \
    --exclude='./tests/browser/node_modules' -cf - .) | tar -C "$src" -xf -
fi

if command -v ccache >/dev/null; then
  CCACHE_DIR=${CCACHE_DIR:-$(ccache -k cache_dir)}
  export CCACHE_DIR
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
  # This build's own hits and misses (the cache's counters are shared with other builds).
  export CCACHE_STATSLOG=$out/ccache-stats.log
  rm -f "$CCACHE_STATSLOG"
fi
jobs=${JOBS:-2}
cd "$src"
# -us -uc: unsigned (a local build). The source package is built too, so lintian checks it.
DEB_BUILD_OPTIONS="parallel=$jobs ${DEB_BUILD_OPTIONS:-}" \
  dpkg-buildpackage -us -uc --build=full >"$out/build.log" 2>&1 || {
  tail -n 60 "$out/build.log" >&2
  echo "make-deb: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
  exit 1
}
if [ -n "${CCACHE_STATSLOG:-}" ] && [ -f "$CCACHE_STATSLOG" ]; then
  ccache --show-log-stats 2>/dev/null |
    awk '$1 == "Hits:" { h = $2 } $1 == "Misses:" { m = $2 } END { print "ccache: " h+0 " hits, " m+0 " misses" }' \
      >"$out/ccache-summary.txt" || true
  cat "$out/ccache-summary.txt"
fi
deb=$out/pgfanout_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
[ -f "$deb" ] || { echo "make-deb: $deb was not written (see $out/build.log)" >&2; exit 1; }
echo "$deb"
