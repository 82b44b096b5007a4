#!/usr/bin/env bash
# The Debian package (make deb, debian/): it builds (scripts/make-deb.sh), lintian finds no error or
# warning in it, and it installs and purges cleanly in a scratch root: a private mount namespace
# where an overlay on a tmpfs covers /, so the real dpkg -i / --remove / --purge and their
# maintainer scripts (systemd-sysusers, deb-systemd-helper) run against a copy of this machine
# and the machine itself is left untouched (checked before and after).
#
#   tests/scripts/deb_test.sh [OUT]     # OUT: where the package is built (default build/deb)
#
# Needs root (mounts, chroot); exits 77 (ctest: skipped) without it. ctest runs it as deb_test.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

# --- Inside the namespace: install, check, remove, purge, check. -----------------------------
if [ "${1:-}" = --in-namespace ]; then
  deb=$2 source_root=$3 work=$4
  failed=0
  check() {  # check NAME STATUS [DETAIL]
    if [ "$2" = 0 ]; then echo "ok: $1"; else failed=$((failed + 1)); echo "FAILED: $1"; [ -z "${3:-}" ] || echo "$3" | sed 's/^/    /'; fi
  }
  mount -t tmpfs tmpfs "$work" || exit 99
  mkdir "$work/upper" "$work/work" "$work/root"
  r=$work/root
  mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper,workdir=$work/work" "$r" || exit 99
  mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" || exit 99
  # A /run of its own, where /run/systemd/system says "systemd runs" to the maintainer scripts,
  # and stand-ins for systemctl and deb-systemd-invoke that log what the scripts ask of systemd
  # (offline `systemctl --root=` calls, deb-systemd-helper's presets, go to the real one).
  mount -t tmpfs tmpfs "$r/run" && mount -t tmpfs tmpfs "$r/tmp" || exit 99
  mkdir -p "$r/run/systemd/system"
  printf '#!/bin/sh\necho "systemctl $*" >>/tmp/systemd-calls\ncase " $* " in *" --root="*) exec /bin/systemctl "$@" ;; esac\n' >"$r/usr/local/sbin/systemctl"
  printf '#!/bin/sh\necho "deb-systemd-invoke $*" >>/tmp/systemd-calls\n' >"$r/usr/local/sbin/deb-systemd-invoke"
  chmod 755 "$r/usr/local/sbin/systemctl" "$r/usr/local/sbin/deb-systemd-invoke"
  cp "$deb" "$r/tmp/"
  inroot() { chroot "$r" env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
  calls() { cat "$r/tmp/systemd-calls" 2>/dev/null; rm -f "$r/tmp/systemd-calls"; }
  # A machine that has pgfanout installed: start from a purged copy of it.
  inroot dpkg-query -W pgfanout >/dev/null 2>&1 && inroot dpkg --purge pgfanout >/dev/null 2>&1
  inroot getent passwd pgfanout >/dev/null && inroot userdel pgfanout 2>/dev/null

  calls >/dev/null
  out=$(inroot dpkg -i "/tmp/${deb##*/}" 2>&1)
  check "dpkg -i installs it" $? "$out"
  asked=$(calls)
  check "install: enabled, not started (systemd is asked for no start)" \
    "$(! grep -q 'start\|restart' <<<"$asked" && grep -q 'preset pgfanout.service' <<<"$asked"; echo $?)" "$asked"
  status=$(inroot dpkg-query -W -f='${db:Status-Abbrev}' pgfanout 2>&1)
  check "dpkg says installed" "$([ "${status% }" = ii ]; echo $?)" "$status"

  missing=""
  for f in /usr/bin/pgfanout /lib/systemd/system/pgfanout.service \
    /usr/lib/sysusers.d/pgfanout.conf /etc/pgfanout/pgfanout.yaml \
    /usr/share/man/man8/pgfanout.8.gz /usr/share/doc/pgfanout/README.md \
    /usr/share/doc/pgfanout/operations.md /usr/share/doc/pgfanout/configuration.md \
    /usr/share/doc/pgfanout/copyright /usr/share/doc/pgfanout/changelog.gz \
    /usr/share/pgfanout/rules/chat.yaml /usr/share/pgfanout/examples/pgfanout.yaml; do
    [ -f "$r$f" ] || missing+="$f "
  done
  for f in "$source_root"/sql/triggers/*.sql; do
    cmp -s "$f" "$r/usr/share/pgfanout/sql/triggers/${f##*/}" || missing+="/usr/share/pgfanout/sql/triggers/${f##*/} "
  done
  check "files laid out (binary, unit, sysusers, config, SQL, man page, docs)" "$([ -z "$missing" ]; echo $?)" "missing or different: $missing"
  cmp -s "$r/etc/pgfanout/pgfanout.yaml" "$source_root/systemd/pgfanout.yaml"
  check "/etc/pgfanout/pgfanout.yaml is systemd/pgfanout.yaml" $?
  conffiles=$(inroot dpkg-query -W -f='${Conffiles}' pgfanout)
  check "/etc/pgfanout/pgfanout.yaml is a conffile" "$(grep -q '^ /etc/pgfanout/pgfanout.yaml ' <<<"$conffiles"; echo $?)" "$conffiles"

  user=$(inroot getent passwd pgfanout)
  check "sysusers created the pgfanout system user" \
    "$([[ $user =~ ^pgfanout:x:([0-9]+): ]] && [ "${BASH_REMATCH[1]}" -lt 1000 ] && inroot getent group pgfanout >/dev/null; echo $?)" "$user"

  version=$(inroot pgfanout --version 2>&1)
  want=$(sed -n 's/^project(pgfanout VERSION \([0-9.]*\) .*/\1/p' "$source_root/CMakeLists.txt")
  check "pgfanout --version runs from the package" "$([ "$version" = "pgfanout $want" ]; echo $?)" "$version"

  # The man page names every command and option of --help.
  help=$(inroot pgfanout --help)
  man=$(zcat "$r/usr/share/man/man8/pgfanout.8.gz" | sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/^\.[A-Z]* //')
  absent=""
  while read -r cmd; do
    grep -qF -- "$cmd" <<<"$man" || absent+="'$cmd' "
  done < <(sed -n 's/^  \(pgfanout [a-z]\+\( [a-z]\+\)\?\) .*/\1/p' <<<"$help" | sed 's/ [A-Z].*//' | sort -u;
           grep -o -- '--[a-z-]\+' <<<"$help" | sort -u)
  check "the man page covers pgfanout --help" "$([ -z "$absent" ]; echo $?)" "not in pgfanout(8): $absent"

  verify=$(inroot systemd-analyze verify /lib/systemd/system/pgfanout.service 2>&1)
  check "systemd-analyze verify accepts the installed unit" "$([ $? = 0 ] && [ -z "$verify" ]; echo $?)" "$verify"
  link=$(readlink "$r/etc/systemd/system/multi-user.target.wants/pgfanout.service")
  check "the service is enabled (multi-user.target.wants)" \
    "$([ "$link" = /lib/systemd/system/pgfanout.service ]; echo $?)" "symlink: '$link'"
  # Again, as the README says to install it: apt (a reinstall runs the upgrade path). apt runs
  # dpkg with a PATH of its own (DPkg::Path), which must find the stand-ins too.
  out=$(inroot env DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall \
    --no-install-recommends -o DPkg::Path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "/tmp/${deb##*/}" 2>&1)
  asked=$(calls)
  check "upgrade (apt install of the .deb again): try-restart (restarted only if running), no stop" \
    "$(grep -qx 'deb-systemd-invoke try-restart pgfanout.service' <<<"$asked" && ! grep -q 'invoke stop\|invoke start' <<<"$asked"; echo $?)" "$out
$asked"

  # Not started until configured: the unit's ExecCondition= fails (start skipped) on the shipped
  # config and passes once its settings are uncommented, which then pass pgfanout check.
  condition=$(sed -n 's/^ExecCondition=//p' "$r/lib/systemd/system/pgfanout.service")
  inroot sh -c "$condition" 2>/dev/null; rc=$?
  check "ExecCondition skips the start with the shipped config" "$([ $rc = 1 ]; echo $?)" "rc=$rc: $condition"
  sed -i '/^#version: 1$/,$ s/^#//' "$r/etc/pgfanout/pgfanout.yaml"
  inroot sh -c "$condition"; rc=$?
  out=$(inroot pgfanout check --config /etc/pgfanout/pgfanout.yaml 2>&1); rc_check=$?
  check "uncommented, the config starts the service and passes pgfanout check" \
    "$([ $rc = 0 ] && [ $rc_check = 0 ]; echo $?)" "condition rc=$rc; check rc=$rc_check: $out"

  out=$(inroot dpkg --remove pgfanout 2>&1)
  check "dpkg --remove" $? "$out"
  asked=$(calls)
  check "remove: the service is stopped" "$(grep -qx 'deb-systemd-invoke stop pgfanout.service' <<<"$asked"; echo $?)" "$asked"
  left=""
  for f in /usr/bin/pgfanout /lib/systemd/system/pgfanout.service /usr/share/pgfanout; do
    [ -e "$r$f" ] && left+="$f "
  done
  check "remove: files gone, the edited conffile kept" "$([ -z "$left" ] && [ -f "$r/etc/pgfanout/pgfanout.yaml" ]; echo $?)" "left: $left"

  out=$(inroot dpkg --purge pgfanout 2>&1)
  check "dpkg --purge" $? "$out"
  left=""
  for f in /usr/bin/pgfanout /lib/systemd/system/pgfanout.service /usr/lib/sysusers.d/pgfanout.conf \
    /etc/pgfanout /usr/share/pgfanout /usr/share/doc/pgfanout /usr/share/man/man8/pgfanout.8.gz \
    /etc/systemd/system/multi-user.target.wants/pgfanout.service \
    /var/lib/systemd/deb-systemd-helper-enabled/pgfanout.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/pgfanout.service; do
    [ -e "$r$f" ] || [ -L "$r$f" ] && left+="$f "
  done
  status=$(inroot dpkg-query -W -f='${db:Status-Abbrev}' pgfanout 2>/dev/null)
  check "purge: files, conffile, /etc/pgfanout, enablement and dpkg's record gone" \
    "$([ -z "$left" ] && { [ -z "${status// /}" ] || [ "${status% }" = pn ]; }; echo $?)" "left: $left; status '$status'"
  # Debian policy: a system user is not removed on purge (files it owns may remain).
  inroot getent passwd pgfanout >/dev/null
  check "purge: the pgfanout user stays, as Debian does" $?

  # The native triggers' package, where PostgreSQL 15 is installed: the module lands in its $libdir
  # and the server can load it; purge takes it away.
  native_deb=${deb%/*}/postgresql-15-pgfanout_${deb##*/pgfanout_}
  if inroot dpkg-query -W -f='${db:Status-Abbrev}' postgresql-15 2>/dev/null | grep -q '^ii'; then
    cp "$native_deb" "$r/tmp/"
    out=$(inroot dpkg -i "/tmp/${native_deb##*/}" 2>&1)
    check "dpkg -i postgresql-15-pgfanout" $? "$out"
    out=$(nm -D --defined-only "$r/usr/lib/postgresql/15/lib/pgfanout_native.so" 2>&1)
    check "it installs the module with its trigger functions" \
      "$(grep -q ' pgfanout_native_row$' <<<"$out" && grep -q ' Pg_magic_func$' <<<"$out"; echo $?)" "$out"
    out=$(inroot dpkg --purge postgresql-15-pgfanout 2>&1)
    check "dpkg --purge postgresql-15-pgfanout removes it" \
      "$([ $? = 0 ] && [ ! -e "$r/usr/lib/postgresql/15/lib/pgfanout_native.so" ]; echo $?)" "$out"
  fi
  exit "$failed"
fi

# --- Outside: build, lintian, the package's metadata, the namespace, the machine after. -------
out=${1:-$root/build/deb}
if [ "$(id -u)" != 0 ]; then
  echo "deb_test: needs root (mount namespace, overlay, chroot); skipped"
  exit 77
fi
passed=0 failed=0
check() {  # check NAME STATUS [DETAIL]
  if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "ok: $1"; else failed=$((failed + 1)); echo "FAILED: $1"; [ -z "${3:-}" ] || echo "$3" | sed 's/^/    /'; fi
}

version=$(sed -n 's/^project(pgfanout VERSION \([0-9.]*\) .*/\1/p' "$root/CMakeLists.txt")
changelog=$(dpkg-parsechangelog -l "$root/debian/changelog" -S Version)
check "debian/changelog's version is CMakeLists.txt's ($version)" "$([ -n "$version" ] && [ "$version" = "$changelog" ]; echo $?)" "changelog: $changelog"

start=$(date +%s)
deb=$("$root/scripts/make-deb.sh" "$out" 2>&1 | tail -n 1)
check "the package builds: ${deb##*/} ($(($(date +%s) - start))s)" \
  "$([ "${deb##*/}" = "pgfanout_${version}_amd64.deb" ] && [ -f "$deb" ]; echo $?)" "$(tail -n 30 "$out/build.log" 2>/dev/null; echo "$deb")"
[ -f "$deb" ] || { echo "deb_test: $failed failed, no package to check further"; exit 1; }
grep -q -- '-DPGFANOUT_TESTS=OFF' "$out/build.log" && ! grep -q 'Building CXX object tests/' "$out/build.log"
check "the package build does not build the tests" $?
# The native triggers' package: the module, in PostgreSQL 15's $libdir, and nothing else but docs.
native_deb=$out/postgresql-15-pgfanout_${version}_amd64.deb
contents=$(dpkg-deb -c "$native_deb" 2>&1)
check "postgresql-15-pgfanout holds the module in PostgreSQL 15's \$libdir" \
  "$(grep -q ' ./usr/lib/postgresql/15/lib/pgfanout_native.so$' <<<"$contents" &&
     ! grep -v -e '/$' -e ' ./usr/lib/postgresql/15/lib/pgfanout_native.so$' -e ' ./usr/share/doc/' <<<"$contents" | grep -q .
     echo $?)" "$contents"
stats=$(cat "$out/ccache-summary.txt" 2>/dev/null || true)

# lintian: the source and the binary package (the .changes names both). --fail-on: any warning.
start=$(date +%s)
changes=$(ls "$out"/pgfanout_"${version}"_*.changes)
lint=$(lintian --fail-on error,warning --info "$changes" 2>&1); rc=$?
check "lintian: no error or warning ($(($(date +%s) - start))s)" "$([ $rc = 0 ] && ! grep -q '^[EW]: ' <<<"$lint"; echo $?)" "$lint"
# What it says besides, overrides (O:, each justified in debian/**/lintian-overrides) included.
lintian --info --show-overrides "$changes" 2>&1 | grep '^[EWIPO]: ' | sed 's/^/    lintian: /'

# The host before and after: pgfanout's dpkg record, user and files, and the account files.
host_state() {
  dpkg-query -W -f='${db:Status-Abbrev} ${Version}\n' pgfanout 2>&1
  getent passwd pgfanout; getent group pgfanout
  ls -ld --time-style=full-iso /usr/bin/pgfanout /lib/systemd/system/pgfanout.service \
    /usr/lib/sysusers.d/pgfanout.conf /etc/pgfanout /etc/pgfanout/* /usr/share/pgfanout \
    /usr/share/man/man8/pgfanout.8.gz /etc/systemd/system/multi-user.target.wants/pgfanout.service 2>&1
  md5sum /etc/passwd /etc/group /etc/shadow /var/lib/dpkg/info/pgfanout.list 2>&1
}
before=$(host_state)
work=$(mktemp -d)  # a tmpfs inside the namespace; an empty directory outside
trap 'rmdir "$work"' EXIT
unshare --mount --propagation private bash "$0" --in-namespace "$deb" "$root" "$work"
rc=$?
if [ $rc = 99 ]; then
  check "scratch root: mount namespace with an overlay of /" 1 "unshare/mount failed (a container without CAP_SYS_ADMIN?)"
else
  failed=$((failed + rc))
fi
after=$(host_state)
check "the machine is untouched (pgfanout's package, user, files; passwd, group, shadow)" \
  "$([ "$before" = "$after" ]; echo $?)" "$(diff <(echo "$before") <(echo "$after"))"

echo "deb_test: ${deb##*/}${stats:+, $stats}; $failed failed"
[ "$failed" = 0 ]
