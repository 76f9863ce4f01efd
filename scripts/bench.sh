#!/usr/bin/env bash
# make bench: wharf beside the reference registry (see bench/run.py for the knobs:
# BENCH_QUICK=1 for small sizes, BENCH_ROUNDS, BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v docker-registry >/dev/null || { echo "bench: docker-registry missing (apt-get install docker-registry)"; exit 1; }
command -v skopeo >/dev/null || { echo "bench: skopeo missing"; exit 1; }
exec /usr/bin/python3 bench/run.py "$@"
