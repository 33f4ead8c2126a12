#!/usr/bin/env bash
# `vigil harvest` on the long video (media/long/episode16.mp4: Megamind and vtest in a seeded
# order, 16+ minutes) against the per-face loop a user writes without vigil
# (bench/naive_harvest.cpp: cv::VideoCapture, BlazeFace at batch 1, one embedder call per
# detected face, a crop written per face), on the same cores; and vigil harvest with
# --cpu-budget 1 against the default (all cores). Prints one JSON object: each run's
# frames/s, faces/s (detected faces processed), embedder calls and CPU, and the ratios.
#
#   bench/harvest_throughput.sh [VIDEO]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIGIL_DATA="${VIGIL_DATA:-$HOME/.cache/vigil}"
video="${1:-$VIGIL_DATA/media/long/episode16.mp4}"
vigil="$here/build/release/vigil"
naive="$here/build/release/bench/vigil_naive_harvest"
[ -x "$vigil" ] && [ -x "$naive" ] || { echo "harvest_throughput: build first (make build)" >&2; exit 2; }
[ -s "$video" ] || { echo "harvest_throughput: $video missing (scripts/fetch_models.sh)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

harvest() {  # $1: name, then extra arguments; prints the run's JSON
  local name="$1"; shift
  "$vigil" harvest "$video" --out "$work/$name" "$@" >/dev/null 2>&1
  /usr/bin/python3 - "$work/$name/manifest.json" "$name" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
c, t = m["counts"], m["timings"]
print(json.dumps({"run": sys.argv[2], "frames": c["frames"], "faces": c["faces_detected"],
                  "embedder_calls": c["embedder_calls"], "seconds": round(t["seconds"], 2),
                  "frames_per_s": round(c["frames"] / t["seconds"], 1),
                  "faces_per_s": round(c["faces_detected"] / t["seconds"], 1),
                  "cpu_cores": round(t["cpu_cores"], 2), "cpu_budget": m["settings"]["cpu_budget"]}))
PY
}

all="$(harvest vigil_all_cores)"
one="$(harvest vigil_budget_1 --cpu-budget 1)"
base="$("$naive" "$video" "$work/naive")"
/usr/bin/python3 - "$all" "$one" "$base" "$(nproc)" <<'PY'
import json, sys
all_, one, base = (json.loads(a) for a in sys.argv[1:4])
print(json.dumps({
    "benchmark": "harvest_throughput", "cores": int(sys.argv[4]),
    "vigil": all_, "vigil_budget_1": one,
    "naive": {k: (round(v, 2) if isinstance(v, float) else v) for k, v in base.items() if k != "video"},
    "frames_per_s_vs_naive": round(all_["frames_per_s"] / base["frames_per_s"], 2),
    "faces_per_s_vs_naive": round(all_["faces_per_s"] / base["faces_per_s"], 2),
    "speedup_all_cores_vs_budget_1": round(one["seconds"] / all_["seconds"], 2),
}, indent=1))
PY
