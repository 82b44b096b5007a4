#!/usr/bin/env bash
# Installs the Debian 12 packages pgfanout needs to build, test and run its demo.
# Skips what is already installed; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache git
  libpq-dev libhiredis-dev libboost1.81-all-dev libboost-json1.81-dev libyaml-cpp-dev libspdlog-dev
  libgtest-dev libssl-dev libsystemd-dev
  postgresql-15 postgresql-15-pgtap postgresql-15-postgis-3 redis-server
  curl procps clang-format clang libclang-rt-14-dev
  # For the tests: systemd-analyze verify, and promtool check metrics (the prometheus package
  # also installs a Prometheus server unit; `systemctl disable --now prometheus` if unwanted).
  systemd prometheus
)
# The browser tests (tests/browser): PGFANOUT_WITH_BROWSER=0 leaves them out. Node.js and npm
# are taken from Debian only when the machine has none: an image that ships its own Node.js
# (with npm inside) conflicts with Debian's npm package.
if [ "${PGFANOUT_WITH_BROWSER:-1}" = 1 ]; then
  packages+=(chromium)
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$p")
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
