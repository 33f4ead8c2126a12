#!/usr/bin/env bash
# Runs test suites many times in a row while another process keeps every core busy, to
# catch flaky tests before CI does. A test that fails once here is a broken build.
#   tests/stress.sh [--parallel] [REPEATS] [PRESET...]   (defaults: 20, release asan tsan)
# Each preset runs the labels `make test` gives it (release: all; asan: unit|concurrency;
# tsan: concurrency). --parallel runs the presets at the same time (more load, less wall
# time). Build first (make test, or scripts/setup.sh PRESET). Logs: build/stress-PRESET.log.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
parallel=0
if [[ "${1:-}" == --parallel ]]; then parallel=1; shift; fi
repeats="${1:-20}"; shift || true
presets=("$@"); ((${#presets[@]})) || presets=(release asan tsan)

# The load: one busy loop per core, stopped however this script ends.
load_pids=()
for _ in $(seq "$(nproc)"); do (while :; do :; done) & load_pids+=($!); done
trap 'kill "${load_pids[@]}" 2>/dev/null || true' EXIT

stress() {
  local preset="$1" labels=()
  case "$preset" in
    asan) labels=(-L 'unit|concurrency') ;;
    tsan) labels=(-L concurrency)
          export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$here/tests/tsan.supp" ;;
  esac
  echo "stress: $preset, $repeats runs of each test under load"
  ctest --test-dir "$here/build/$preset" --output-on-failure -j "$(nproc)" "${labels[@]}" \
        --repeat "until-fail:$repeats"
}

if ((parallel)); then
  pids=()
  for preset in "${presets[@]}"; do
    stress "$preset" > "$here/build/stress-$preset.log" 2>&1 & pids+=($!)
  done
  rc=0
  for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then echo "stress: ${presets[$i]} passed"; else echo "stress: ${presets[$i]} FAILED (build/stress-${presets[$i]}.log)"; rc=1; fi
  done
  exit "$rc"
fi
for preset in "${presets[@]}"; do stress "$preset"; done
