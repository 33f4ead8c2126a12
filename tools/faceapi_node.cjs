// face-api in Node, shared by tools/faceapi_reference.cjs and tools/faceapi_ssd_faces.cjs.
//
// face-api's Node build asks for @tensorflow/tfjs-node (native, downloads a binary at
// install time); requiring this module first resolves that name to @tensorflow/tfjs, so
// the same network code runs on the pure-JavaScript CPU backend. The packages come from
// scripts/fetch_models.sh (pinned versions, in $VIGIL_DATA/node/node_modules; NODE_PATH
// points there).
//
//   const { start, loadNet, main } = require('./faceapi_node.cjs');
//   main('my_tool', async () => {
//     const { faceapi, tf, print } = await start();
//     loadNet(faceapi, faceapi.nets.faceRecognitionNet, modelDir, 'face_recognition_model');
//     print(JSON.stringify(...));  // stdout; tfjs's own greetings are silenced
//   });
'use strict';
const Module = require('module');
const fs = require('fs');
const path = require('path');

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return resolve.call(this, request === '@tensorflow/tfjs-node' ? '@tensorflow/tfjs' : request, ...rest);
};

// Loads face-api on the CPU backend. print() writes to stdout; console.log/warn are
// silenced because tfjs greets Node users on both streams.
async function start() {
  const print = console.log;
  console.log = () => {};
  console.warn = () => {};
  const faceapi = require('@vladmandic/face-api');
  const tf = faceapi.tf;
  await tf.setBackend('cpu');
  await tf.ready();
  return { faceapi, tf, print };
}

// Loads MODEL_DIR/STEM.bin with its STEM-weights_manifest.json into `net`.
function loadNet(faceapi, net, modelDir, stem) {
  const manifest = JSON.parse(fs.readFileSync(path.join(modelDir, `${stem}-weights_manifest.json`)));
  const weights = fs.readFileSync(path.join(modelDir, `${stem}.bin`));
  const map = faceapi.tf.io.decodeWeights(new Uint8Array(weights).buffer, manifest.flatMap((group) => group.weights));
  net.loadFromWeightMap(map);
}

// Runs an async tool; an error is one line on stderr and exit status 1.
function main(name, body) {
  body().catch((e) => {
    process.stderr.write(`${name}: ${e.stack || e}\n`);
    process.exit(1);
  });
}

module.exports = { start, loadNet, main };
