#!/usr/bin/env bash
# Requests per second for snapshot.jpg over loopback with `wrk`, 16 live synthetic 720p
# cameras at 15 fps, the snapshot cache on against the same server with it off (every
# request encodes). Rounds alternate (on, off, on, off, ...) so a noisy machine slows both;
# prints one JSON object with each round and the medians.
#
#   bench/http_snapshots.sh [ROUNDS] [SECONDS]        (defaults: 3 rounds of 5 s)
#
# wrk and vigil share the machine's cores, as a viewer on the same host would.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${1:-3}"
seconds="${2:-5}"
vigil="$here/build/release/vigil"
export VIGIL_DATA="${VIGIL_DATA:-$HOME/.cache/vigil}"
command -v wrk >/dev/null || { echo "http_snapshots: wrk is missing (scripts/setup.sh installs it)" >&2; exit 2; }
[ -x "$vigil" ] || { echo "http_snapshots: build first (make build)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

config() {  # $1: snapshot_cache true|false
  {
    echo "models:"
    echo "  faces: {path: \"\${VIGIL_DATA}/models/blazeface_front_128_dyn.onnx\", input_size: 128, max_batch: 8}"
    echo "cameras:"
    for i in $(seq 1 16); do
      echo "  - {id: cam$i, source: {type: synthetic, pattern: image, path: \"\${VIGIL_DATA}/media/sample$(( (i - 1) % 6 + 1 )).jpg\", width: 1280, height: 720, fps: 15}, detect: {every: 3}}"
    done
    echo "http: {listen: \"127.0.0.1:0\", snapshot_cache: $1}"
    echo "status_interval_s: 0"
    echo "log_level: warn"
  } > "$work/vigil-$1.yaml"
}
config true
config false

cat > "$work/cameras.lua" <<'EOF'
-- each request asks for the next camera's snapshot, round robin
local i = 0
request = function()
  i = i % 16 + 1
  return wrk.format("GET", "/api/v1/cameras/cam" .. i .. "/snapshot.jpg")
end
EOF

# One round: start vigil, wait for its API line and every camera live, run wrk, stop vigil.
# Prints "requests_per_s p99_ms encodes".
round() {
  local cache="$1" out="$work/run-$1.out"
  "$vigil" run --config "$work/vigil-$cache.yaml" > "$out" 2>&1 &
  local pid=$! port=""
  for _ in $(seq 600); do
    port="$(sed -n 's|.*API at http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$out")"
    [ -n "$port" ] && break
    kill -0 $pid 2>/dev/null || { cat "$out" >&2; exit 1; }
    sleep 0.1
  done
  for _ in $(seq 600); do
    curl_ok=1
    python3 - "$port" <<'EOF' || curl_ok=0
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=2)
except Exception:
    sys.exit(1)
EOF
    [ $curl_ok -eq 1 ] && break
    sleep 0.1
  done
  local report
  report="$(wrk -t2 -c32 -d"${seconds}s" --latency -s "$work/cameras.lua" "http://127.0.0.1:$port")"
  kill -TERM $pid; wait $pid || true
  local rps p99
  rps="$(echo "$report" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p')"
  p99="$(echo "$report" | awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } print v }')"
  echo "$rps $p99"
}

results=()
for r in $(seq 1 "$rounds"); do
  read -r on_rps on_p99 < <(round true)
  read -r off_rps off_p99 < <(round false)
  results+=("$r $on_rps $on_p99 $off_rps $off_p99")
done

python3 - "$seconds" "$(nproc)" "$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)" "${results[@]}" <<'EOF'
import json, statistics, sys, platform
seconds, cores, revision = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rounds = []
for line in sys.argv[4:]:
    r, on_rps, on_p99, off_rps, off_p99 = line.split()
    rounds.append({"round": int(r), "cache_on": {"requests_per_s": float(on_rps), "p99_ms": float(on_p99)},
                   "cache_off": {"requests_per_s": float(off_rps), "p99_ms": float(off_p99)},
                   "ratio": float(on_rps) / float(off_rps)})
def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
cpu = "unknown"
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except Exception:
    pass
print(json.dumps({
    "benchmark": "http_snapshots", "cameras": 16, "frame": "1280x720", "wrk": "-t2 -c32", "seconds_per_round": seconds,
    "machine": f"{cores} cores, {cpu}", "revision": revision, "rounds": rounds,
    "summary": {"cache_on_requests_per_s": spread([r["cache_on"]["requests_per_s"] for r in rounds]),
                "cache_off_requests_per_s": spread([r["cache_off"]["requests_per_s"] for r in rounds]),
                "ratio": spread([r["ratio"] for r in rounds]),
                "cache_on_p99_ms": spread([r["cache_on"]["p99_ms"] for r in rounds]),
                "cache_off_p99_ms": spread([r["cache_off"]["p99_ms"] for r in rounds])}}, indent=1))
EOF
