#!/usr/bin/env node
// Reference face descriptors from face-api itself, for checking vigil's ONNX conversion.
//
// Runs @vladmandic/face-api's FaceRecognitionNet with the pure-JavaScript TensorFlow.js CPU
// backend (no native code) on 150x150 RGB chips and prints {"file": [128 floats], ...}.
// face-api starts in Node through tools/faceapi_node.cjs (tfjs-node resolved to tfjs).
//
// usage: faceapi_reference.cjs MODEL_DIR CHIP_DIR   (CHIP_DIR/*.rgb: 150*150*3 bytes each)
'use strict';
const fs = require('fs');
const path = require('path');
const { start, loadNet, main } = require('./faceapi_node.cjs');

main('faceapi_reference', async () => {
  const [modelDir, chipDir] = process.argv.slice(2);
  if (!modelDir || !chipDir) {
    process.stderr.write('usage: faceapi_reference.cjs MODEL_DIR CHIP_DIR\n');
    process.exit(2);
  }
  const { faceapi, tf, print } = await start();
  loadNet(faceapi, faceapi.nets.faceRecognitionNet, modelDir, 'face_recognition_model');
  const out = {};
  for (const name of fs.readdirSync(chipDir).filter((f) => f.endsWith('.rgb')).sort()) {
    const bytes = fs.readFileSync(path.join(chipDir, name));
    if (bytes.length !== 150 * 150 * 3) throw new Error(`${name}: ${bytes.length} bytes, expected 150*150*3`);
    const chip = tf.tensor3d(new Uint8Array(bytes), [150, 150, 3], 'int32');
    const descriptor = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chip);
    out[name] = Array.from(descriptor);
    chip.dispose();
  }
  print(JSON.stringify({ backend: tf.getBackend(), tfjs: tf.version_core, faceapi: faceapi.version, descriptors: out }));
});
