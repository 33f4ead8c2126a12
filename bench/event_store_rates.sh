#!/usr/bin/env bash
# The engine's rates with the event store on against the same run with it off: 4 looping
# 720p files (two with a face in nearly every frame, Megamind; two with pedestrians, vtest),
# BlazeFace 128 on every frame, faces embedded and given identities, so the store gets track
# and identity events (with face JPEGs) as fast as the engine makes them. Rounds alternate
# (on, off, off, on, on, off, ...) so a noisy machine, or going first, slows both; prints one JSON object with each
# round and the medians. The issue's bar: rates unchanged (+-5%) with the store on.
#
#   bench/event_store_rates.sh [ROUNDS] [SECONDS]        (defaults: 3 rounds of 20 s)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${1:-3}"
seconds="${2:-20}"
vigil="$here/build/release/vigil"
export VIGIL_DATA="${VIGIL_DATA:-$HOME/.cache/vigil}"
[ -x "$vigil" ] || { echo "event_store_rates: build first (make build)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

config() {  # $1: on|off
  {
    echo "models:"
    echo "  faces: {path: \"\${VIGIL_DATA}/models/blazeface_front_128_dyn.onnx\", input_size: 128, max_batch: 4, max_delay_ms: 2}"
    echo "  embedder: {kind: face_embedder, path: \"\${VIGIL_DATA}/models/face_recognition_128.onnx\", max_batch: 16, max_delay_ms: 5}"
    echo "cameras:"
    for i in 1 2 3 4; do
      local file=megamind_720p.mp4
      [ $((i % 2)) -eq 0 ] && file=vtest_720p.mp4
      echo "  - {id: file$i, source: {type: file, url: \"\${VIGIL_DATA}/media/bench/$file\", loop: true}}"
    done
    [ "$1" = on ] && echo "store: {path: \"$work/vigil.db\"}"
    echo "status_interval_s: 0"
    echo "log_level: warn"
  } > "$work/vigil-$1.yaml"
}
config on
config off

# One round: prints "decoded_fps inferred_fps cpu_cores events_stored events_dropped".
round() {
  local out="$work/run-$1.out"
  "$vigil" run --config "$work/vigil-$1.yaml" --duration "$seconds" > "$out" 2>&1 || { cat "$out" >&2; exit 1; }
  python3 - "$out" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"(\d+) frames decoded in ([\d.]+) s \(([\d.]+) fps\), (\d+) inferred.*CPU ([\d.]+) cores", text)
if not m:
    sys.exit("event_store_rates: no summary line in:\n" + text)
stored = re.search(r"(\d+) events stored in .* \((\d+) dropped\)", text)
wall = float(m.group(2))
print(m.group(3), int(m.group(4)) / wall, m.group(5), stored.group(1) if stored else 0, stored.group(2) if stored else 0)
EOF
}

results=()
for r in $(seq 1 "$rounds"); do
  rm -f "$work"/vigil.db*
  if [ $((r % 2)) -eq 1 ]; then  # which goes first alternates too
    read -r on_dec on_inf on_cpu on_events on_dropped < <(round on)
    read -r off_dec off_inf off_cpu _ _ < <(round off)
  else
    read -r off_dec off_inf off_cpu _ _ < <(round off)
    read -r on_dec on_inf on_cpu on_events on_dropped < <(round on)
  fi
  results+=("$r $on_dec $on_inf $on_cpu $on_events $on_dropped $off_dec $off_inf $off_cpu")
done

python3 - "$seconds" "$(nproc)" "$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)" "${results[@]}" <<'EOF'
import json, statistics, sys
seconds, cores, revision = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rounds = []
for line in sys.argv[4:]:
    r, on_dec, on_inf, on_cpu, events, dropped, off_dec, off_inf, off_cpu = line.split()
    rounds.append({"round": int(r),
                   "store_on": {"decoded_fps": float(on_dec), "inferred_fps": float(on_inf), "cpu_cores": float(on_cpu),
                                "events_stored": int(events), "events_dropped": int(dropped)},
                   "store_off": {"decoded_fps": float(off_dec), "inferred_fps": float(off_inf), "cpu_cores": float(off_cpu)},
                   "inferred_ratio": float(on_inf) / float(off_inf)})
def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
cpu = "unknown"
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except Exception:
    pass
print(json.dumps({
    "benchmark": "event_store_rates", "cameras": "4 looping 720p files", "seconds_per_round": seconds,
    "machine": f"{cores} cores, {cpu}", "revision": revision, "rounds": rounds,
    "summary": {"inferred_fps_on": spread([r["store_on"]["inferred_fps"] for r in rounds]),
                "inferred_fps_off": spread([r["store_off"]["inferred_fps"] for r in rounds]),
                "inferred_ratio_on_over_off": spread([r["inferred_ratio"] for r in rounds]),
                "events_stored": spread([r["store_on"]["events_stored"] for r in rounds])}}, indent=1))
EOF
