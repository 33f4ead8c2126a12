#!/usr/bin/env node
// Face boxes from an independent detector: face-api's SSD MobileNet v1 face detector
// (@vladmandic/face-api, ssd_mobilenetv1_model.bin) run in Node with the pure-JavaScript
// TensorFlow.js CPU backend (started by tools/faceapi_node.cjs, like the descriptor
// reference). Ground truth for BlazeFace's tests, which must not come from BlazeFace itself.
//
// usage: faceapi_ssd_faces.cjs MODEL_DIR MIN_CONFIDENCE NAME=WIDTHxHEIGHT:FILE.rgb ...
//   FILE.rgb: raw RGB bytes (tools/make_sample_faces_fixture.sh makes them with ffmpeg).
// Prints {"detector": ..., "images": {"NAME": [{"box": [x1, y1, x2, y2], "score": s}, ...]}}.
'use strict';
const fs = require('fs');
const { start, loadNet, main } = require('./faceapi_node.cjs');

main('faceapi_ssd_faces', async () => {
  const [modelDir, minConfidence, ...images] = process.argv.slice(2);
  if (!modelDir || !minConfidence || images.length === 0) {
    process.stderr.write('usage: faceapi_ssd_faces.cjs MODEL_DIR MIN_CONFIDENCE NAME=WxH:FILE.rgb ...\n');
    process.exit(2);
  }
  const { faceapi, tf, print } = await start();
  loadNet(faceapi, faceapi.nets.ssdMobilenetv1, modelDir, 'ssd_mobilenetv1_model');
  const options = new faceapi.SsdMobilenetv1Options({ minConfidence: Number(minConfidence), maxResults: 100 });
  const out = {};
  for (const spec of images) {
    const m = /^([^=]+)=(\d+)x(\d+):(.+)$/.exec(spec);
    if (!m) throw new Error(`bad image argument ${spec}`);
    const [, name, w, h, file] = m;
    const bytes = fs.readFileSync(file);
    if (bytes.length !== w * h * 3) throw new Error(`${file}: ${bytes.length} bytes, expected ${w}*${h}*3`);
    const image = tf.tensor3d(new Uint8Array(bytes), [Number(h), Number(w), 3], 'int32');
    const faces = await faceapi.detectAllFaces(image, options);
    out[name] = faces
      .map((f) => ({ box: [f.box.x, f.box.y, f.box.x + f.box.width, f.box.y + f.box.height].map((v) => Math.round(v * 10) / 10),
                     score: Math.round(f.score * 1000) / 1000 }))
      .sort((a, b) => a.box[0] - b.box[0]);
    image.dispose();
  }
  // One face per line, so a regenerated fixture diffs line by line.
  const lines = Object.entries(out).map(([name, faces]) =>
    `  ${JSON.stringify(name)}: [\n` + faces.map((f) => `   ${JSON.stringify(f)}`).join(',\n') + '\n  ]');
  print(`{"detector": ${JSON.stringify(`face-api ${faceapi.version} ssdMobilenetv1, tfjs ${tf.version_core} ${tf.getBackend()}`)},\n` +
        ` "min_confidence": ${Number(minConfidence)},\n "images": {\n${lines.join(',\n')}\n }\n}`);
});
