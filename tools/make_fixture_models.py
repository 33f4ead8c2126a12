#!/usr/bin/python3
"""Fixture models with the exact input and output signatures of the real exports users bring.

No YOLO or InsightFace weights can be fetched here, so vigil's decoders are tested on models
that have the same names, shapes and layouts as the real files and whose outputs are planted:
each output is `planted + 0 * f(input)` (f = global average pool, flatten, a zero Gemm,
reshape), so the graph runs on any backend, follows the batch, and gives values a test can
compute by hand. The planted values are listed below and repeated in tests/vision.

  yolo11n.onnx         images [N,3,640,640] -> output0 [N,84,8400]   (Ultralytics v8/v11 detect, 80 classes)
  yolov8n-pose.onnx    images [N,3,640,640] -> output0 [N,56,8400]   (box, person score, 17 x (x, y, visibility))
  det_10g.onnx         input.1 [1,3,640,640] -> 9 outputs without a batch axis, InsightFace SCRFD:
                       score_8 [12800,1], score_16 [3200,1], score_32 [800,1],
                       bbox_8 [12800,4], bbox_16 [3200,4], bbox_32 [800,4],
                       kps_8 [12800,10], kps_16 [3200,10], kps_32 [800,10]
  det_10g_batched.onnx input.1 [N,3,640,640] -> the same 9 outputs with a batch axis, [N,12800,1] ...
  w600k_r50.onnx       input.1 [N,3,112,112] -> 683 [N,512]   (InsightFace ArcFace): the mean of each input
                       channel through a planted 512x3 Gemm, W[k] = (sin k, cos k, sin 2k / 2), b[k] = (k mod 7) / 100

usage: make_fixture_models.py OUT_DIR
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ANCHORS = 80 * 80 + 40 * 40 + 20 * 20  # 8400 at 640, strides 8, 16, 32


def planted_graph(name, input_name, input_dims, outputs, batch_axis=True):
    """outputs: list of (name, planted array with a leading 1 batch axis)."""
    nodes = [
        helper.make_node("GlobalAveragePool", [input_name], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "zero_w", "zero_b"], ["zero"], transB=1),  # [N, 1], always 0
    ]
    inits = [numpy_helper.from_array(np.zeros((1, 3), np.float32), "zero_w"),
             numpy_helper.from_array(np.zeros((1,), np.float32), "zero_b")]
    graph_outputs = []
    for out_name, planted in outputs:
        rank = planted.ndim
        shape_name = f"{out_name}_zshape"
        inits.append(numpy_helper.from_array(np.array([-1] + [1] * (rank - 1), np.int64), shape_name))
        inits.append(numpy_helper.from_array(planted.astype(np.float32), f"{out_name}_planted"))
        nodes.append(helper.make_node("Reshape", ["zero", shape_name], [f"{out_name}_z"]))
        if batch_axis:
            nodes.append(helper.make_node("Add", [f"{out_name}_z", f"{out_name}_planted"], [out_name]))
            dims = ["N"] + list(planted.shape[1:])
        else:
            nodes.append(helper.make_node("Add", [f"{out_name}_z", f"{out_name}_planted"], [f"{out_name}_b"]))
            flat_name = f"{out_name}_flat"
            inits.append(numpy_helper.from_array(np.array([-1, planted.shape[-1]], np.int64), flat_name))
            nodes.append(helper.make_node("Reshape", [f"{out_name}_b", flat_name], [out_name]))
            dims = [planted.shape[1], planted.shape[2]]
        graph_outputs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, dims))
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_dims)],
                              graph_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="vigil-fixture")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def yolo_detect():
    out = np.zeros((1, 84, ANCHORS), np.float32)
    def plant(anchor, box, cls, score):
        out[0, 0:4, anchor] = box
        out[0, 4 + cls, anchor] = score
    plant(100, (320, 240, 100, 200), 0, 0.90)    # a person
    plant(5000, (100, 500, 50, 50), 2, 0.60)     # a car
    plant(5001, (102, 502, 50, 50), 2, 0.50)     # the same car again: suppressed (IoU 0.85)
    plant(6000, (100, 500, 50, 50), 7, 0.55)     # a truck on the same box: kept (NMS per class)
    plant(7000, (500, 100, 40, 40), 1, 0.20)     # below the 0.25 threshold
    return planted_graph("yolo11n_fixture", "images", ["N", 3, 640, 640], [("output0", out)])


def yolo_pose():
    out = np.zeros((1, 56, ANCHORS), np.float32)
    out[0, 0:5, 200] = (320, 320, 200, 400, 0.80)  # a person
    for k in range(17):
        out[0, 5 + 3 * k:8 + 3 * k, 200] = (250 + 8 * k, 150 + 16 * k, 0.9 if k % 2 == 0 else 0.1)
    out[0, 0:5, 201] = (322, 322, 200, 400, 0.70)  # the same person: suppressed
    out[0, 0:5, 300] = (100, 100, 20, 20, 0.10)    # below threshold
    return planted_graph("yolov8n_pose_fixture", "images", ["N", 3, 640, 640], [("output0", out)])


def scrfd(batch_axis):
    strides = (8, 16, 32)
    counts = [(640 // s) ** 2 * 2 for s in strides]
    scores = [np.zeros((1, n, 1), np.float32) for n in counts]
    boxes = [np.zeros((1, n, 4), np.float32) for n in counts]
    kps = [np.zeros((1, n, 10), np.float32) for n in counts]
    # stride 16, grid (x 20, y 10), second anchor: index (10 * 40 + 20) * 2 + 1 = 841; centre (320, 160)
    scores[1][0, 841, 0] = 0.95
    boxes[1][0, 841] = (3, 4, 5, 6)  # distances left, top, right, bottom in strides: (272, 96) - (400, 256)
    kps[1][0, 841] = (-1.5, -1, 1.5, -1, 0, 0.5, -1, 2, 1, 2)  # eyes, nose, mouth corners in strides
    # stride 8, grid (x 0, y 0), first anchor: centre (0, 0); below the 0.5 threshold
    scores[0][0, 0, 0] = 0.30
    boxes[0][0, 0] = (1, 1, 1, 1)
    # stride 32, grid (x 5, y 15), first anchor: index (15 * 20 + 5) * 2 = 610; centre (160, 480)
    scores[2][0, 610, 0] = 0.70
    boxes[2][0, 610] = (1, 1, 1, 1)  # (128, 448) - (192, 512)
    kps[2][0, 610] = (-0.5, -0.25, 0.5, -0.25, 0, 0, -0.25, 0.5, 0.25, 0.5)
    outputs = ([(f"score_{s}", a) for s, a in zip(strides, scores)] + [(f"bbox_{s}", a) for s, a in zip(strides, boxes)] +
               [(f"kps_{s}", a) for s, a in zip(strides, kps)])
    name = "det_10g_batched_fixture" if batch_axis else "det_10g_fixture"
    dims = ["N", 3, 640, 640] if batch_axis else [1, 3, 640, 640]
    return planted_graph(name, "input.1", dims, outputs, batch_axis=batch_axis)


def arcface():
    k = np.arange(512, dtype=np.float64)
    w = np.stack([np.sin(k), np.cos(k), 0.5 * np.sin(2 * k)], axis=1).astype(np.float32)  # [512, 3]
    b = ((k % 7) / 100.0).astype(np.float32)
    nodes = [helper.make_node("GlobalAveragePool", ["input.1"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["683"], transB=1)]
    graph = helper.make_graph(nodes, "w600k_r50_fixture",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
                              [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", 512])],
                              [numpy_helper.from_array(w, "fc_w"), numpy_helper.from_array(b, "fc_b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="vigil-fixture")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for file_name, model in (("yolo11n.onnx", yolo_detect()), ("yolov8n-pose.onnx", yolo_pose()),
                             ("det_10g.onnx", scrfd(False)), ("det_10g_batched.onnx", scrfd(True)),
                             ("w600k_r50.onnx", arcface())):
        onnx.save(model, os.path.join(out_dir, file_name))


if __name__ == "__main__":
    main()
