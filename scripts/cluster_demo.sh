#!/usr/bin/env bash
# make cluster-demo: a loopback redis-server, two workers and two ingest nodes on
# examples/cluster.yaml; half-way, one worker and one ingest node are killed (SIGKILL). Prints
# what was taken over, and checks that every frame of every file reached a sink.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vigil="$here/build/release/vigil"
config="$here/examples/cluster.yaml"
export VIGIL_DATA="${VIGIL_DATA:-$HOME/.cache/vigil}"
out="$here/out/cluster"
rm -rf "$out" && mkdir -p "$out"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --logfile "$out/redis.log" &
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
url="redis://127.0.0.1:$port"
echo "cluster-demo: redis-server on $url"

for w in w1 w2; do
  "$vigil" worker --config "$config" --redis "$url" --name $w --threads 1 --inference-threads 1 > "$out/$w.log" 2>&1 &
  eval "pid_$w=$!"
done
for n in n1 n2; do
  NODE_OUT="$out/$n.jsonl" "$vigil" ingest --config "$config" --redis "$url" --node $n > "$out/$n.log" 2>&1 &
  eval "pid_$n=$!"
done
# Half-way: both nodes run cameras and results are coming.
for _ in $(seq 600); do
  lines=$( (cat "$out"/n*.jsonl 2>/dev/null || true) | wc -l)
  [ "$lines" -ge 600 ] && break
  sleep 0.1
done
"$vigil" cluster status --redis "$url"
echo "cluster-demo: SIGKILL to worker w1 and ingest node n1"
kill -9 "$pid_w1" "$pid_n1"
killed=$(date +%s.%N)
wait "$pid_n2" || true
done_at=$(date +%s.%N)
echo "cluster-demo: n2 finished $(python3 -c "print(f'{$done_at - $killed:.1f}')") s after the kills"
grep -h "taken over\|vigil ingest: [0-9]" "$out/n2.log" | sed 's/^/  n2: /'
kill "$pid_w2" 2>/dev/null || true
wait "$pid_w2" 2>/dev/null || true
grep -h "vigil worker:" "$out/w2.log" | sed 's/^/  w2: /'

python3 - "$out" <<'PY'
import json, sys, collections
out = sys.argv[1]
frames = {"megamind1": 270, "megamind2": 270, "street1": 795, "street2": 795}
seen = {n: collections.defaultdict(set) for n in ("n1", "n2")}
for n in seen:
    try:
        for line in open(f"{out}/{n}.jsonl"):
            j = json.loads(line)
            seen[n][j["camera"]].add(j["seq"])
    except FileNotFoundError:
        pass
lost = 0
for cam, total in frames.items():
    union = seen["n1"][cam] | seen["n2"][cam]
    missing = total - len(union & set(range(total)))
    lost += missing
    print(f"cluster-demo: {cam}: {len(union)} of {total} frames in the sinks (n1 {len(seen['n1'][cam])}, n2 {len(seen['n2'][cam])})"
          + ("" if missing == 0 else f", {missing} MISSING"))
print("cluster-demo: nothing lost" if lost == 0 else f"cluster-demo: {lost} frames lost")
sys.exit(0 if lost == 0 else 1)
PY
echo "cluster-demo: logs and results in $out"
