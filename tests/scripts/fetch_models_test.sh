#!/usr/bin/env bash
# fetch_models.sh replaces a damaged cached file with a checked copy, and is quiet and
# offline-safe when everything is already in place.
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${VIGIL_DATA:-$HOME/.cache/vigil}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cp -r "$cache/." "$work/"
export VIGIL_DATA="$work"

out="$("$src/scripts/fetch_models.sh")"
[ -z "$out" ] || { echo "FAIL: expected no output when all files are present, got: $out"; exit 1; }

good="$(sha256sum "$work/media/sample1.jpg" | cut -d' ' -f1)"
printf 'damaged' >"$work/media/sample1.jpg"
"$src/scripts/fetch_models.sh" >/dev/null
now="$(sha256sum "$work/media/sample1.jpg" | cut -d' ' -f1)"
[ "$good" = "$now" ] || { echo "FAIL: damaged sample1.jpg was not replaced"; exit 1; }

rm "$work/models/blazeface_back_256_dyn.onnx"
"$src/scripts/fetch_models.sh" >/dev/null
[ -s "$work/models/blazeface_back_256_dyn.onnx" ] || { echo "FAIL: dynamic-batch model not remade"; exit 1; }
printf 'damaged' >"$work/models/face_recognition_128.onnx"
"$src/scripts/fetch_models.sh" >/dev/null
[ "$(sha256sum "$work/models/face_recognition_128.onnx" | cut -d' ' -f1)" = \
  "$(sha256sum "$cache/models/face_recognition_128.onnx" | cut -d' ' -f1)" ] || { echo "FAIL: damaged embedder not remade"; exit 1; }
echo "PASS"
