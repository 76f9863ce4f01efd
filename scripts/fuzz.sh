#!/usr/bin/env bash
# Runs the libFuzzer targets built by `make fuzz` (preset "fuzz", build-fuzz/), each for
# FUZZ_SECONDS (default 60) on its committed corpus fuzz/corpus/<target>/, which it only reads:
# new inputs go to build-fuzz/scratch/<target>/, crashes to build-fuzz/crashes/<target>/, the
# log to build-fuzz/logs/<target>.log. Prints one line per target and fails if any crashed.
#
#   scripts/fuzz.sh [TARGET...]               all targets when none is named
#   FUZZ_MERGE=1 scripts/fuzz.sh [TARGET...]  minimise the scratch finds that add coverage into
#                                             fuzz/corpus/<target>/ (libFuzzer -merge=1)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for bin in "$BUILD"/fuzz/*_fuzz; do
    [ -x "$bin" ] && targets+=("$(basename "$bin" _fuzz)")
  done
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets in $BUILD/fuzz (run make fuzz)" >&2; exit 1; }

mkdir -p "$BUILD/logs"
failed=()
for t in "${targets[@]}"; do
  bin="$BUILD/fuzz/${t}_fuzz"
  corpus="fuzz/corpus/$t"
  scratch="$BUILD/scratch/$t"
  crashes="$BUILD/crashes/$t"
  log="$BUILD/logs/$t.log"
  mkdir -p "$scratch" "$crashes"
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    before=$(ls "$corpus" | wc -l)
    "$bin" -merge=1 "${dict[@]}" "$corpus" "$scratch" >"$log" 2>&1 || failed+=("$t")
    echo "fuzz merge $t: corpus $before -> $(ls "$corpus" | wc -l) files"
    continue
  fi
  rc=0
  "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashes/" "${dict[@]}" "$scratch" "$corpus" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 || true)
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} runs, $cov; see $log and $crashes/"
  else
    echo "fuzz $t: ${SECONDS_EACH}s, ${execs:-?} runs (${secs:-?}/s), $cov," \
      "$(ls "$scratch" | wc -l) new inputs in $scratch"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
