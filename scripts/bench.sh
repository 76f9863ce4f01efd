#!/usr/bin/env bash
# make bench: wharf beside the reference registry (see bench/run.py for the knobs:
# BENCH_QUICK=1 for small sizes, BENCH_ROUNDS, BUILD_DIR, BENCH_ROWS=registry,auth,site).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ",${BENCH_ROWS:-registry,auth,site}," == *,registry,* ||
      ",${BENCH_ROWS:-registry,auth,site}," == *,site,* ]]; then
  command -v docker-registry >/dev/null || { echo "bench: docker-registry missing (apt-get install docker-registry)"; exit 1; }
  command -v skopeo >/dev/null || { echo "bench: skopeo missing"; exit 1; }
fi
if [[ ",${BENCH_ROWS:-registry,auth,site}," == *,auth,* ]]; then
  for t in wrk ab htpasswd openssl; do
    command -v "$t" >/dev/null || { echo "bench: $t missing (apt-get install wrk apache2-utils openssl)"; exit 1; }
  done
fi
exec /usr/bin/python3 bench/run.py "$@"
