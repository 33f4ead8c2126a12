#!/usr/bin/python3
"""Rebuild face-api's 128-D face descriptor ResNet (dlib's architecture) as ONNX.

The npm package @vladmandic/face-api ships the network as `face_recognition_model.bin`
plus `face_recognition_model-weights_manifest.json` (TensorFlow.js weight format) and
defines it in JavaScript (src/faceRecognitionNet/*.ts). This script reads the weights in
manifest order, dequantises the uint8 ones (`value = q * scale + min`), and writes the same
computation as an ONNX graph that OpenCV DNN 4.6 runs:

  input  "input"      [N, 150, 150, 3] float, RGB in 0..255 (an aligned face chip)
  output "descriptor" [N, 128] float (not normalised; face-api compares Euclidean distances)

  (x - [122.782, 117.001, 104.298]) / 255, NHWC -> NCHW
  conv32_down: 7x7 stride 2 VALID, max-pool 3/2 VALID
  residual blocks: conv 3x3 SAME + ReLU, conv 3x3 SAME, + identity, ReLU
  down blocks: conv 3x3 stride 2 VALID + ReLU, conv 3x3 SAME; shortcut: 2x2/2 average pool,
               channels zero-padded; conv branch zero-padded one row/column bottom/right
               where the sizes differ; add, ReLU
  global average pool, fc 256 -> 128 (Gemm, transB, with an explicit zero bias for OpenCV 4.6)

Each conv is `conv(x, W) + b` followed by the scale layer `* s + t`; the two are folded into
one Conv (W * s, b * s + t). Checked against the package run in Node with the TensorFlow.js
CPU backend (tools/faceapi_reference.cjs, `vigil eval faces --reference`).

usage: faceapi_recognition_onnx.py MANIFEST.json WEIGHTS.bin OUT.onnx
"""
import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MEAN_RGB = [122.782, 117.001, 104.298]
EXPECTED_TENSORS = 117
EXPECTED_PARAMS = 5_600_000  # about; checked to 1%

BLOCKS = [  # (name, down-sampling)
    ("conv32_1", False), ("conv32_2", False), ("conv32_3", False),
    ("conv64_down", True), ("conv64_1", False), ("conv64_2", False), ("conv64_3", False),
    ("conv128_down", True), ("conv128_1", False), ("conv128_2", False),
    ("conv256_down", True), ("conv256_1", False), ("conv256_2", False), ("conv256_down_out", True),
]


def read_weights(manifest_path, bin_path):
    with open(manifest_path) as f:
        manifest = json.load(f)
    with open(bin_path, "rb") as f:
        data = f.read()
    specs = [w for group in manifest for w in group["weights"]]
    if len(specs) != EXPECTED_TENSORS:
        raise SystemExit(f"{manifest_path}: {len(specs)} tensors, expected {EXPECTED_TENSORS}")
    weights = {}
    offset = 0
    for spec in specs:
        shape = spec["shape"]
        count = int(np.prod(shape)) if shape else 1
        q = spec.get("quantization")
        if q:
            if q["dtype"] != "uint8":
                raise SystemExit(f"{spec['name']}: unsupported quantisation {q['dtype']}")
            raw = np.frombuffer(data, dtype=np.uint8, count=count, offset=offset)
            value = raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
            offset += count
        else:
            if spec["dtype"] != "float32":
                raise SystemExit(f"{spec['name']}: unsupported dtype {spec['dtype']}")
            value = np.frombuffer(data, dtype="<f4", count=count, offset=offset).copy()
            offset += 4 * count
        weights[spec["name"]] = value.reshape(shape).astype(np.float32)
    if offset != len(data):
        raise SystemExit(f"{bin_path}: {len(data)} bytes, the manifest describes {offset}")
    params = sum(v.size for v in weights.values())
    if abs(params - EXPECTED_PARAMS) > EXPECTED_PARAMS * 0.01:
        raise SystemExit(f"{bin_path}: {params} parameters, expected about {EXPECTED_PARAMS}")
    return weights


class Graph:
    def __init__(self, weights):
        self.w = weights
        self.nodes = []
        self.inits = []
        self.count = 0

    def name(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base, array):
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def node(self, op, inputs, base, **attrs):
        out = self.name(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, prefix, stride, same, relu):
        """conv + bias, then the scale layer, folded; ReLU if asked."""
        f = self.w[f"{prefix}/conv/filters"]  # HWIO
        b = self.w[f"{prefix}/conv/bias"]
        s = self.w[f"{prefix}/scale/weights"]
        t = self.w[f"{prefix}/scale/biases"]
        kernel = f.transpose(3, 2, 0, 1) * s[:, None, None, None]  # OIHW
        bias = b * s + t
        k = kernel.shape[2]
        pad = (k - 1) // 2 if same else 0  # TF SAME with stride 1 and an odd kernel: symmetric
        if same and stride != 1:
            raise SystemExit("SAME padding is only used with stride 1 in this network")
        y = self.node("Conv", [x, self.const(prefix + "/W", kernel.astype(np.float32)),
                               self.const(prefix + "/B", bias.astype(np.float32))],
                      prefix.replace("/", "_"), kernel_shape=[k, k], strides=[stride, stride],
                      pads=[pad, pad, pad, pad])
        return self.node("Relu", [y], "relu") if relu else y

    def pad(self, x, pads):
        return self.node("Pad", [x, self.const("pads", np.array(pads, dtype=np.int64))], "pad", mode="constant")


def spatial_size(size, kernel, stride):
    return (size - kernel) // stride + 1


def build(weights):
    g = Graph(weights)
    x = g.node("Sub", ["input", g.const("mean", np.array(MEAN_RGB, dtype=np.float32))], "centre")
    x = g.node("Mul", [x, g.const("inv255", np.array(1.0 / 255.0, dtype=np.float32))], "scale")
    x = g.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    x = g.conv(x, "conv32_down", 2, same=False, relu=True)
    x = g.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2])
    size = spatial_size(spatial_size(150, 7, 2), 3, 2)
    channels = 32
    for name, down in BLOCKS:
        if not down:
            y = g.conv(x, f"{name}/conv1", 1, same=True, relu=True)
            y = g.conv(y, f"{name}/conv2", 1, same=True, relu=False)
            x = g.node("Relu", [g.node("Add", [y, x], "add")], "relu")
            continue
        out_channels = weights[f"{name}/conv1/conv/filters"].shape[3]
        y = g.conv(x, f"{name}/conv1", 2, same=False, relu=True)
        y = g.conv(y, f"{name}/conv2", 1, same=True, relu=False)
        conv_size = spatial_size(size, 3, 2)
        pool_size = spatial_size(size, 2, 2)
        if conv_size != pool_size:  # face-api concatenates one zero row and one zero column
            if pool_size - conv_size != 1:
                raise SystemExit(f"{name}: conv {conv_size} vs pool {pool_size}")
            y = g.pad(y, [0, 0, 0, 0, 0, 0, 1, 1])
        pooled = g.node("AveragePool", [x], "avgpool", kernel_shape=[2, 2], strides=[2, 2])
        if out_channels != channels:
            pooled = g.pad(pooled, [0, 0, 0, 0, 0, out_channels - channels, 0, 0])
        x = g.node("Relu", [g.node("Add", [pooled, y], "add")], "relu")
        size, channels = pool_size, out_channels
    x = g.node("GlobalAveragePool", [x], "gap")
    x = g.node("Flatten", [x], "flatten", axis=1)
    fc = np.ascontiguousarray(weights["fc"].T)  # [128, 256]: transB, the layout OpenCV's importer expects
    out = helper.make_node("Gemm", [x, g.const("fc/W", fc), g.const("fc/B", np.zeros(fc.shape[0], np.float32))],
                           ["descriptor"], name="fc", transB=1)
    g.nodes.append(out)
    graph = helper.make_graph(
        g.nodes, "face_recognition_net",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 150, 150, 3])],
        [helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, ["N", 128])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)],
                              producer_name="vigil tools/faceapi_recognition_onnx.py")
    model.ir_version = 6
    onnx.checker.check_model(model)
    return model


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    model = build(read_weights(sys.argv[1], sys.argv[2]))
    onnx.save(model, sys.argv[3])


if __name__ == "__main__":
    main()
