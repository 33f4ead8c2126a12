#!/usr/bin/env bash
# Installs what vigil needs on Debian 12, fetches models and media, configures and builds.
# Idempotent and quiet when everything is present.
#   scripts/setup.sh [PRESET]      (default: release)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
preset="${1:-release}"

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates clang
  libopencv-dev libavcodec-dev libavformat-dev libavutil-dev libswscale-dev ffmpeg
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libeigen3-dev libgtest-dev libgmock-dev googletest libbenchmark-dev
  libxnnpack-dev libpthreadpool-dev libdnnl-dev ocl-icd-opencl-dev libonnx-dev libprotobuf-dev
  libmicrohttpd-dev libturbojpeg0-dev prometheus wrk chromium libsqlite3-dev sqlite3 zlib1g-dev libcurl4-openssl-dev
  libhiredis-dev redis-server
  python3 python3-onnx python3-numpy opencv-doc nodejs npm
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  # npm can already come from elsewhere (e.g. a node toolchain); don't fight it.
  if command -v npm >/dev/null 2>&1; then
    missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
  fi
  read -r -a missing <<<"${missing[*]}"
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

"$here/scripts/fetch_models.sh"

build_dir="$here/build/$preset"
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake --preset "$preset" -S "$here" >/dev/null
fi
cmake --build "$build_dir"
