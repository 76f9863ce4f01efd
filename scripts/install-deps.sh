#!/usr/bin/env bash
# Installs every build and test dependency of wharf from Debian 12's packages; with FUZZ=1,
# instead, what `make fuzz` adds. Idempotent, and silent when everything is already present.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config
  libboost-dev libboost-system-dev libssl-dev nlohmann-json3-dev libsqlite3-dev libpq-dev
  libspdlog-dev libfmt-dev libcli11-dev libyaml-cpp-dev libxxhash-dev libexpected-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # tests and benchmarks
  python3 python3-pytest python3-requests python3-xxhash skopeo podman buildah docker-registry wrk
  procps openssl apache2-utils curl
  # more registry clients for tests/e2e/test_more_clients.py: containerd's ctr, and Charliecloud's
  # ch-image (charliecloud-builders; ch-image refuses to start without ch-run from -runtime)
  containerd charliecloud-builders charliecloud-runtime
  # the status page's end-to-end test opens /ui/ in headless Chromium (screenshot, DOM)
  chromium
  # PostgreSQL server: the metadata store's tests start a private one (initdb, pg_ctl; Debian
  # keeps them in /usr/lib/postgresql/*/bin, off PATH)
  postgresql
)
# `make fuzz` only (FUZZ=1): clang with libFuzzer and the sanitizer runtimes, llvm-symbolizer.
if [ "${FUZZ:-0}" = 1 ]; then
  PACKAGES=(clang-14 libclang-rt-14-dev llvm-14)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
