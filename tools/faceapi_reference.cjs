#!/usr/bin/env node
// Reference face descriptors from face-api itself, for checking vigil's ONNX conversion.
//
// Runs @vladmandic/face-api's FaceRecognitionNet with the pure-JavaScript TensorFlow.js CPU
// backend (no native code) on 150x150 RGB chips and prints {"file": [128 floats], ...}.
// face-api's Node build asks for @tensorflow/tfjs-node (native, downloads a binary at
// install time); this script resolves that name to @tensorflow/tfjs instead, so the same
// network code runs on the CPU backend. The packages come from scripts/fetch_models.sh
// (pinned versions, in $VIGIL_DATA/node/node_modules; NODE_PATH points there).
//
// usage: faceapi_reference.cjs MODEL_DIR CHIP_DIR   (CHIP_DIR/*.rgb: 150*150*3 bytes each)
'use strict';
const Module = require('module');
const fs = require('fs');
const path = require('path');

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return resolve.call(this, request === '@tensorflow/tfjs-node' ? '@tensorflow/tfjs' : request, ...rest);
};

async function main() {
  const [modelDir, chipDir] = process.argv.slice(2);
  if (!modelDir || !chipDir) {
    process.stderr.write('usage: faceapi_reference.cjs MODEL_DIR CHIP_DIR\n');
    process.exit(2);
  }
  const log = console.log;
  console.log = () => {};  // tfjs greets Node users on stdout
  const faceapi = require('@vladmandic/face-api');
  const tf = faceapi.tf;
  await tf.setBackend('cpu');
  await tf.ready();
  const manifest = JSON.parse(fs.readFileSync(path.join(modelDir, 'face_recognition_model-weights_manifest.json')));
  const weights = fs.readFileSync(path.join(modelDir, 'face_recognition_model.bin'));
  const specs = manifest.flatMap((group) => group.weights);
  const map = tf.io.decodeWeights(new Uint8Array(weights).buffer, specs);
  faceapi.nets.faceRecognitionNet.loadFromWeightMap(map);
  const out = {};
  for (const name of fs.readdirSync(chipDir).filter((f) => f.endsWith('.rgb')).sort()) {
    const bytes = fs.readFileSync(path.join(chipDir, name));
    if (bytes.length !== 150 * 150 * 3) throw new Error(`${name}: ${bytes.length} bytes, expected 150*150*3`);
    const chip = tf.tensor3d(new Uint8Array(bytes), [150, 150, 3], 'int32');
    const descriptor = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chip);
    out[name] = Array.from(descriptor);
    chip.dispose();
  }
  log(JSON.stringify({ backend: tf.getBackend(), tfjs: tf.version_core, faceapi: faceapi.version, descriptors: out }));
}

main().catch((e) => {
  process.stderr.write(`faceapi_reference: ${e.stack || e}\n`);
  process.exit(1);
});
