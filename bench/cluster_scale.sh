#!/usr/bin/env bash
# Many live cameras across a small cluster: N synthetic cameras at 1 fps (640x360 pans over
# the sample photos), BlazeFace 128 on every frame, two `vigil ingest` nodes and two
# `vigil worker`s (one core each: one serving thread, one intra-op thread), against a
# redis-server (Debian's) on a free loopback port, all on this machine. Runs DURATION
# seconds; after the warm-up (half of it) reads each node's API every 5 s: cameras live on
# each node. Prints one JSON object: per node its cameras live (min over the samples after
# the warm-up), frames decoded and inferred per second, frames replaced (newest-wins), frame
# age p99 and CPU (cores); per worker items/s and CPU; Redis's peak memory; the totals.
#
# MAX_AGE_MS (optional) sets cluster.max_age_ms: workers drop live requests older than that
# unrun (default 1000), which bounds the age of the frames that are delivered.
#
#   bench/cluster_scale.sh [CAMERAS] [DURATION] [MAX_AGE_MS]   (default 1000 cameras, 90 s)
set -euo pipefail
cameras="${1:-1000}"
duration="${2:-90}"
max_age_ms="${3:-}"
bench=cluster_scale
source "$(dirname "${BASH_SOURCE[0]}")/cluster_common.sh"

{
  echo "models:"
  echo "  faces: {path: \"\${VIGIL_DATA}/models/blazeface_front_128_dyn.onnx\", input_size: 128, max_batch: 8}"
  echo "cameras:"
  for i in $(seq 0 $((cameras - 1))); do
    echo "  - {id: c$i, source: {type: synthetic, pattern: image, path: \"\${VIGIL_DATA}/media/sample$((i % 6 + 1)).jpg\", width: 640, height: 360, fps: 1}}"
  done
  echo "http: {listen: \"127.0.0.1:0\"}"
  [ -n "$max_age_ms" ] && echo "cluster: {max_age_ms: $max_age_ms}"
  echo "status_interval_s: 0"
  echo "log_level: warn"
} > "$work/config.yaml"

for w in w1 w2; do
  "$vigil" worker -c "$work/config.yaml" --redis "$url" --name $w --threads 1 --inference-threads 1 --http off >"$work/$w.log" 2>&1 &
done
for w in w1 w2; do for _ in $(seq 600); do grep -q serving "$work/$w.log" && break; sleep 0.05; done; done
for n in a b; do
  "$vigil" ingest -c "$work/config.yaml" --redis "$url" --node $n --duration "$duration" >"$work/$n.log" 2>&1 &
done
for n in a b; do for _ in $(seq 1200); do grep -q "wall at" "$work/$n.log" && break; sleep 0.05; done; done
api() { grep -o "API at http://[^ ]*" "$work/$1.log" | head -1 | cut -d' ' -f3; }
sleep $((duration / 2))
samples="$work/samples.txt"
for _ in $(seq $(((duration / 2 - 5) / 5))); do
  for n in a b; do
    echo "$n $(curl -s "$(api $n)" | python3 -c 'import json,sys; print(sum(c["state"] == "live" for c in json.load(sys.stdin)["cameras"]))')" >> "$samples"
  done
  sleep 5
done
redis-cli -p "$port" info memory | tr -d '\r' | grep '^used_memory_peak:' | cut -d: -f2 > "$work/redis_peak.txt"
wait $(jobs -p | tail -2) 2>/dev/null || true  # the nodes stop after DURATION
for w in w1 w2; do pkill -TERM -f -- "--name $w --threads" || true; done
sleep 2
python3 - "$work" "$cameras" "$max_age_ms" <<'PY'
import json, re, sys, os
work, cameras = sys.argv[1], int(sys.argv[2])
out = {"machine_cores": os.cpu_count(), "cameras": cameras, "max_age_ms": int(sys.argv[3]) if sys.argv[3] else 1000, "fps_per_camera": 1, "nodes": {}, "workers": {}}
samples = [l.split() for l in open(os.path.join(work, "samples.txt"))]
for n in ["a", "b"]:
    text = open(os.path.join(work, n + ".log")).read()
    m = re.search(r"vigil run: (\d+) cameras, (\d+) frames decoded in ([0-9.]+) s \(([0-9.]+) fps\), (\d+) inferred.*frame age p99 (\d+) ms.*CPU ([0-9.]+) cores", text)
    replaced = sum(int(x) for x in re.findall(r"replaced (\d+)", text))
    late = re.search(r"(\d+) dropped as late", text)
    live = [int(v) for k, v in samples if k == n]
    out["nodes"][n] = {"cameras_at_end": int(m.group(1)), "live_min_after_warmup": min(live) if live else None,
                       "live_max_after_warmup": max(live) if live else None,
                       "decoded_fps": float(m.group(4)), "inferred_fps": round(int(m.group(5)) / float(m.group(3)), 1),
                       "frame_age_p99_ms": int(m.group(6)), "cpu_cores": float(m.group(7)),
                       "replaced_in_first_32_cameras": replaced, "dropped_late": int(late.group(1)) if late else None}
for w in ["w1", "w2"]:
    text = open(os.path.join(work, w + ".log")).read()
    m = re.search(r"(\d+) items served in (\d+) batches \(([0-9.]+) per batch\) in ([0-9.]+) s.*CPU ([0-9.]+) cores", text)
    out["workers"][w] = {"items_per_s": round(int(m.group(1)) / float(m.group(4)), 1), "per_batch": float(m.group(3)),
                         "cpu_cores": float(m.group(5))} if m else None
out["live_min_total"] = sum(out["nodes"][n]["live_min_after_warmup"] or 0 for n in out["nodes"])
out["inferred_fps_total"] = round(sum(out["nodes"][n]["inferred_fps"] for n in out["nodes"]), 1)
out["redis_used_memory_peak_mb"] = round(int(open(os.path.join(work, "redis_peak.txt")).read().strip()) / 1e6, 1)
out["frame_age_p99_ms_worst"] = max(out["nodes"][n]["frame_age_p99_ms"] for n in out["nodes"])
print(json.dumps(out, indent=2))
PY
