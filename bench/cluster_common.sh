# What the cluster benchmarks share (sourced, with `bench` set to the script's name): the
# built binary ($vigil), the data ($VIGIL_DATA), a work directory removed on exit with every
# background job, and a redis-server (Debian's) on a free loopback port ($port, $url).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vigil="$here/build/release/vigil"
export VIGIL_DATA="${VIGIL_DATA:-$HOME/.cache/vigil}"
[ -x "$vigil" ] || { echo "$bench: build first (make build)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --logfile "$work/redis.log" &
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
url="redis://127.0.0.1:$port"
