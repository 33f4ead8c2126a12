#!/usr/bin/env bash
# The same work in process and through Redis: four files of 270 frames each (Megamind.avi,
# a face in nearly every frame), BlazeFace 256, every frame detected, on this machine's cores:
#   run      vigil run (the models in process)
#   w1       vigil ingest + one vigil worker (one serving thread per core, the default)
#   w1c1     vigil ingest + one worker on one core (one serving thread, one intra-op thread)
#   w2c1     vigil ingest + two such workers (1 vs 2 workers: w2c1 / w1c1)
# against a redis-server (Debian's) on a free loopback port. Rounds interleave the variants,
# so a noisy machine slows each alike; prints one JSON object: each round's frames per second
# (decode start to last result), Redis round trips and KB per frame inferred, and per variant
# the median, min and max and the ratio of its median to run's.
#
#   bench/cluster_throughput.sh [ROUNDS]        (default 3)
set -euo pipefail
rounds="${1:-3}"
bench=cluster_throughput
source "$(dirname "${BASH_SOURCE[0]}")/cluster_common.sh"

{
  echo "models:"
  echo "  faces: {path: \"\${VIGIL_DATA}/models/blazeface_back_256_dyn.onnx\", input_size: 256, max_batch: 8}"
  echo "cameras:"
  for i in 1 2 3 4; do echo "  - {id: file$i, source: {type: file, url: \"\${VIGIL_DATA}/media/Megamind.avi\"}}"; done
  echo "status_interval_s: 0"
  echo "log_level: warn"
} > "$work/config.yaml"

# One run of a variant; prints "fps trips kb".
variant() {  # $1: run | w1 | w1c1 | w2c1
  redis-cli -p "$port" flushall >/dev/null
  local pids=()
  case "$1" in
    w1) "$vigil" worker -c "$work/config.yaml" --redis "$url" --name w1 >/dev/null 2>&1 & pids+=($!) ;;
    w1c1) "$vigil" worker -c "$work/config.yaml" --redis "$url" --name w1 --threads 1 --inference-threads 1 >/dev/null 2>&1 & pids+=($!) ;;
    w2c1) for w in w1 w2; do
            "$vigil" worker -c "$work/config.yaml" --redis "$url" --name $w --threads 1 --inference-threads 1 >/dev/null 2>&1 & pids+=($!)
          done ;;
  esac
  local out
  if [ "$1" = run ]; then
    out="$("$vigil" run -c "$work/config.yaml")"
  else
    out="$("$vigil" ingest -c "$work/config.yaml" --redis "$url" --node n1)"
  fi
  for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
  python3 - "$out" <<'PY'
import re, sys
text = sys.argv[1]
fps = float(re.search(r"frames decoded in [0-9.]+ s \(([0-9.]+) fps\)", text).group(1))
m = re.search(r"Redis ([0-9.]+) round trips and ([0-9.]+) KB per frame", text)
print(fps, m.group(1) if m else "null", m.group(2) if m else "null")
PY
}

results="$work/results.txt"
for r in $(seq "$rounds"); do
  for v in run w1 w1c1 w2c1; do
    echo "$r $v $(variant $v)" >> "$results"
    echo "cluster_throughput: round $r $v: $(tail -1 "$results" | cut -d' ' -f3-)" >&2
  done
done
python3 - "$results" <<'PY'
import json, statistics, sys, os
rows = [line.split() for line in open(sys.argv[1])]
out = {"machine_cores": os.cpu_count(), "rounds": [], "variants": {}}
for r, v, fps, trips, kb in rows:
    out["rounds"].append({"round": int(r), "variant": v, "fps": float(fps),
                          "round_trips_per_frame": None if trips == "null" else float(trips),
                          "kb_per_frame": None if kb == "null" else float(kb)})
for v in ["run", "w1", "w1c1", "w2c1"]:
    f = [x["fps"] for x in out["rounds"] if x["variant"] == v]
    t = [x["round_trips_per_frame"] for x in out["rounds"] if x["variant"] == v and x["round_trips_per_frame"] is not None]
    k = [x["kb_per_frame"] for x in out["rounds"] if x["variant"] == v and x["kb_per_frame"] is not None]
    out["variants"][v] = {"fps_median": statistics.median(f), "fps_min": min(f), "fps_max": max(f),
                          "round_trips_per_frame": statistics.median(t) if t else None,
                          "kb_per_frame": statistics.median(k) if k else None}
base = out["variants"]["run"]["fps_median"]
out["two_workers_over_one"] = round(out["variants"]["w2c1"]["fps_median"] / out["variants"]["w1c1"]["fps_median"], 3)
for v in out["variants"]:
    out["variants"][v]["ratio_to_run"] = round(out["variants"][v]["fps_median"] / base, 3)
print(json.dumps(out, indent=2))
PY
