#!/usr/bin/env node
// Reference outputs of a TensorFlow.js graph model, for checking tools/tfjs_graph_onnx.py.
//
// Loads MODEL.json and its weight shard into @tensorflow/tfjs (pure-JavaScript CPU backend,
// no native code) and runs it on each INPUT_DIR/*.rgb (H*W*3 bytes, RGB) fed as the graph
// takes it (int32 pixels for an int32 input, float32 times SCALE plus OFFSET otherwise).
// For each image and each requested tensor it writes OUT_DIR/IMAGE.TENSOR_NAME.f32 (the
// tensor's values, float32 little-endian, in TensorFlow's NHWC order; '/' in names becomes
// '_'), and prints one JSON object: backend, versions, and per image each tensor's shape.
//
// usage: tfjs_graph_reference.cjs MODEL.json INPUT_DIR H W OUT_DIR SCALE OFFSET TENSOR[,TENSOR...]
'use strict';
const fs = require('fs');
const path = require('path');

async function run() {
  const [modelJson, inputDir, h, w, outDir, scale, offset, names] = process.argv.slice(2);
  if (!names) {
    process.stderr.write('usage: tfjs_graph_reference.cjs MODEL.json INPUT_DIR H W OUT_DIR SCALE OFFSET TENSOR[,TENSOR...]\n');
    process.exit(2);
  }
  const print = console.log;
  console.log = () => {};
  console.warn = () => {};
  const tf = require('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  await tf.ready();
  const spec = JSON.parse(fs.readFileSync(modelJson));
  const specs = spec.weightsManifest.flatMap((group) => group.weights);
  const data = Buffer.concat(spec.weightsManifest.flatMap((group) =>
    group.paths.map((p) => fs.readFileSync(path.join(path.dirname(modelJson), p)))));
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: spec.modelTopology, weightSpecs: specs,
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
  }));
  const input = model.inputs[0];
  const H = Number(h), W = Number(w);
  const tensors = names.split(',');
  fs.mkdirSync(outDir, { recursive: true });
  const shapes = {};
  for (const file of fs.readdirSync(inputDir).filter((f) => f.endsWith('.rgb')).sort()) {
    const bytes = fs.readFileSync(path.join(inputDir, file));
    if (bytes.length !== H * W * 3) throw new Error(`${file}: ${bytes.length} bytes, expected ${H}*${W}*3`);
    const x = tf.tidy(() => {
      const pixels = tf.tensor4d(new Int32Array(bytes), [1, H, W, 3], 'int32');
      return input.dtype === 'int32' ? pixels : pixels.toFloat().mul(Number(scale)).add(Number(offset));
    });
    const outs = model.execute({ [input.name]: x }, tensors);
    const list = Array.isArray(outs) ? outs : [outs];
    shapes[file] = {};
    list.forEach((t, i) => {
      const values = t.dataSync();
      const f32 = Float32Array.from(values);
      fs.writeFileSync(path.join(outDir, `${file}.${tensors[i].replace(/[/:]/g, '_')}.f32`), Buffer.from(f32.buffer));
      shapes[file][tensors[i]] = t.shape;
      t.dispose();
    });
    x.dispose();
  }
  print(JSON.stringify({ backend: tf.getBackend(), tfjs: tf.version.tfjs, input: input.name, input_dtype: input.dtype, shapes }));
}

run().catch((e) => {
  process.stderr.write(`tfjs_graph_reference: ${e.stack || e}\n`);
  process.exit(1);
});
