#!/usr/bin/env bash
# Writes tests/vision/fixtures/sample_faces_ssd.json: the faces in face-api's sample photos
# (sample1..6.jpg) as face-api's own SSD MobileNet v1 detector finds them (run in Node on
# the TensorFlow.js CPU backend: tools/faceapi_ssd_faces.cjs). BlazeFace's tests score
# against these boxes, so its ground truth does not come from BlazeFace.
# Needs scripts/fetch_models.sh to have run (models, photos, node packages) and ffmpeg.
# usage: tools/make_sample_faces_fixture.sh [OUT.json]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="${VIGIL_DATA:-$HOME/.cache/vigil}"
out="${1:-$root/tests/vision/fixtures/sample_faces_ssd.json}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
args=()
for i in 1 2 3 4 5 6; do
  jpg="$data/media/sample$i.jpg"
  size="$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0:s=x "$jpg")"
  ffmpeg -v error -y -i "$jpg" -f rawvideo -pix_fmt rgb24 "$tmp/sample$i.rgb"
  args+=("sample$i.jpg=$size:$tmp/sample$i.rgb")
done
NODE_PATH="$data/node/node_modules" node "$root/tools/faceapi_ssd_faces.cjs" \
  "$data/node/node_modules/@vladmandic/face-api/model" 0.5 "${args[@]}" >"$tmp/out.json"
mv "$tmp/out.json" "$out"
echo "wrote $out"
