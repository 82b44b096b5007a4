#!/usr/bin/env bash
# Installs the Debian 12 packages pgfanout needs, by name, from the table in scripts/deps.txt
# (the same table scripts/preflight.sh checks). Skips what is already installed; needs root (or
# sudo) only when something is missing. Installs with --no-install-recommends: every package a
# build, test, benchmark or the demo uses is named in the table, never pulled in as a Recommends.
#
#   scripts/install-deps.sh [PROFILE...]     # default: every profile
#
# PGFANOUT_WITH_BROWSER=0 leaves out the browser tests' packages (chromium, Node.js, npm).
# What it changes on the machine besides files: Debian's postgresql-15, redis-server and
# prometheus packages each enable and start a system service on install where systemd runs
# (a PostgreSQL cluster on port 5432, Redis on 6379, Prometheus on 9090); pgfanout's tests and
# demo use none of them (they start throwaway servers on free ports). See docs/development.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/deps-table.sh"
profiles=("$@")
[ ${#profiles[@]} -gt 0 ] || profiles=(build test fuzz browser demo bench package)
deps_select "${profiles[@]}" || exit 2

missing=()
for i in "${!deps_packages[@]}"; do
  package=${deps_packages[$i]}
  if [ "${deps_flags[$i]}" = if-absent ]; then
    # Only when none of its commands exists (an image may ship its own Node.js and npm).
    present=1
    IFS=, read -ra cs <<<"${deps_checks[$i]}"
    for c in "${cs[@]}"; do
      case $c in cmd:*) command -v "${c#cmd:}" >/dev/null 2>&1 || present=0 ;; esac
    done
    [ "$present" = 1 ] && continue
  fi
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
