#!/usr/bin/env bash
# Runs test suites many times in a row while another process keeps every core busy, to
# catch flaky tests before CI does. A test that fails once here is a broken build.
#   tests/stress.sh [REPEATS] [PRESET...]      (defaults: 20, release asan tsan)
# Each preset runs the labels `make test` gives it (release: all; asan: unit|concurrency;
# tsan: concurrency). Build first (make test, or scripts/setup.sh PRESET).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repeats="${1:-20}"; shift || true
presets=("$@"); ((${#presets[@]})) || presets=(release asan tsan)

# The load: one busy loop per core, stopped however this script ends.
load_pids=()
for _ in $(seq "$(nproc)"); do (while :; do :; done) & load_pids+=($!); done
trap 'kill "${load_pids[@]}" 2>/dev/null || true' EXIT

for preset in "${presets[@]}"; do
  labels=()
  case "$preset" in
    asan) labels=(-L 'unit|concurrency') ;;
    tsan) labels=(-L concurrency)
          export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$here/tests/tsan.supp" ;;
  esac
  echo "stress: $preset, $repeats runs of each test under load"
  ctest --test-dir "$here/build/$preset" --output-on-failure -j "$(nproc)" "${labels[@]}" \
        --repeat "until-fail:$repeats"
done
