#!/usr/bin/env bash
# What the Redis hop adds to a frame's latency at 500 requests a second: 100 live synthetic
# cameras at 5 fps (160x90 pans over the sample photos), BlazeFace 128 on every frame,
#   run   vigil run (the model in process)
#   w1    vigil ingest + one vigil worker (the defaults: one serving thread per core)
# on this machine's cores, against a redis-server (Debian's) on a free loopback port. Each
# run lasts DURATION seconds; rounds interleave the two, so a noisy machine slows each alike.
# Prints one JSON object: each round's capture-to-result latency p50 and p99 (the engine's
# vigil_end_to_end_seconds: capture to result delivered), frames inferred per second, and per
# variant the median, min and max; "added_ms" is w1's median minus run's.
#
#   bench/cluster_latency.sh [ROUNDS] [DURATION]       (default 3 rounds of 20 s)
set -euo pipefail
rounds="${1:-3}"
duration="${2:-20}"
bench=cluster_latency
source "$(dirname "${BASH_SOURCE[0]}")/cluster_common.sh"

{
  echo "models:"
  echo "  faces: {path: \"\${VIGIL_DATA}/models/blazeface_front_128_dyn.onnx\", input_size: 128, max_batch: 8}"
  echo "cameras:"
  for i in $(seq 0 99); do
    echo "  - {id: c$i, source: {type: synthetic, pattern: image, path: \"\${VIGIL_DATA}/media/sample$((i % 6 + 1)).jpg\", width: 160, height: 90, fps: 5}}"
  done
  echo "status_interval_s: 0"
  echo "log_level: warn"
} > "$work/config.yaml"

# One run of a variant; prints "p50 p99 inferred_fps".
variant() {  # $1: run | w1
  redis-cli -p "$port" flushall >/dev/null
  local pids=() out
  if [ "$1" = run ]; then
    out="$("$vigil" run -c "$work/config.yaml" --duration "$duration")"
  else
    "$vigil" worker -c "$work/config.yaml" --redis "$url" --name w1 --http off >"$work/w1.log" 2>&1 & pids+=($!)
    for _ in $(seq 600); do grep -q serving "$work/w1.log" && break; sleep 0.05; done
    out="$("$vigil" ingest -c "$work/config.yaml" --redis "$url" --node n1 --duration "$duration")"
  fi
  for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
  python3 - "$out" "$duration" <<'PY'
import re, sys
text, duration = sys.argv[1], float(sys.argv[2])
m = re.search(r"capture to result p50 ([0-9.]+) ms p99 ([0-9.]+) ms", text)
inferred = int(re.search(r"([0-9]+) inferred in", text).group(1))
print(m.group(1), m.group(2), round(inferred / duration, 1))
PY
}

results="$work/results.txt"
for r in $(seq "$rounds"); do
  for v in run w1; do
    echo "$r $v $(variant $v)" >> "$results"
    echo "cluster_latency: round $r $v: $(tail -1 "$results" | cut -d' ' -f3-)" >&2
  done
done
python3 - "$results" <<'PY'
import json, statistics, sys, os
rows = [line.split() for line in open(sys.argv[1])]
out = {"machine_cores": os.cpu_count(), "requests_per_second_offered": 500, "rounds": [], "variants": {}}
for r, v, p50, p99, fps in rows:
    out["rounds"].append({"round": int(r), "variant": v, "p50_ms": float(p50), "p99_ms": float(p99), "inferred_fps": float(fps)})
for v in ["run", "w1"]:
    sel = [x for x in out["rounds"] if x["variant"] == v]
    out["variants"][v] = {}
    for k in ["p50_ms", "p99_ms", "inferred_fps"]:
        vals = [x[k] for x in sel]
        out["variants"][v][k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
out["added_ms"] = {k: round(out["variants"]["w1"][k]["median"] - out["variants"]["run"][k]["median"], 1) for k in ["p50_ms", "p99_ms"]}
print(json.dumps(out, indent=2))
PY
