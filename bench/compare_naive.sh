#!/usr/bin/env bash
# vigil against the naive thread-per-camera loop (bench/naive_loop.cpp), on the same inputs,
# one after the other in this run:
#   throughput on case (a), bench/configs/files4.yaml: vigil pipeline_fps / naive frames_per_s
#   CPU on case (b), bench/configs/live16.yaml: naive cpu_cores / vigil cpu_cores
# Prints one JSON object with both runs and the ratios.
#   bench/compare_naive.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
bin=build/release
a_vigil="$($bin/vigil bench pipeline --config bench/configs/files4.yaml --seconds "$seconds" --json)"
a_naive="$($bin/bench/vigil_naive_loop --config bench/configs/files4.yaml --seconds "$seconds")"
b_vigil="$($bin/vigil bench pipeline --config bench/configs/live16.yaml --seconds "$seconds" --json)"
b_naive="$($bin/bench/vigil_naive_loop --config bench/configs/live16.yaml --seconds "$seconds")"
python3 - "$a_vigil" "$a_naive" "$b_vigil" "$b_naive" <<'PY'
import json, sys
av, an, bv, bn = (json.loads(x) for x in sys.argv[1:5])
print(json.dumps({
    "benchmark": "vigil_vs_naive",
    "files4_throughput_ratio": av["pipeline_fps"] / an["frames_per_s"],
    "files4": {"vigil_fps": av["pipeline_fps"], "naive_fps": an["frames_per_s"],
               "vigil_cpu_cores": av["cpu_cores"], "naive_cpu_cores": an["cpu_cores"]},
    "live16_cpu_ratio_naive_over_vigil": bn["cpu_cores"] / bv["cpu_cores"],
    "live16": {"vigil_cpu_cores": bv["cpu_cores"], "naive_cpu_cores": bn["cpu_cores"],
               "vigil_detect_fps": bv["inferred_fps"], "naive_detect_fps": bn["inferred_per_s"],
               "vigil_threads": bv["threads"], "naive_threads": bn["threads"]},
    "machine": av["machine"], "git_revision": av["git_revision"]}))
PY
