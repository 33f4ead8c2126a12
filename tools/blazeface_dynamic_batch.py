#!/usr/bin/python3
"""Rewrite a MediaPipe BlazeFace ONNX export (tf2onnx, opset 12) for a dynamic batch.

The released files pad channels with `Concat(x, ConstantOfShape([1, C, H, W]))`, which
bakes a batch of 1 into the graph, and reshape their outputs to `[1, anchors, k]`. This
script replaces each such Concat with an equivalent `Pad` on the channel axis (zeros, any
batch), sets the first dimension of every output Reshape to -1 and names the batch
dimension `N` on the graph's input and outputs. Nothing else changes, so at batch 1 the
rewritten graph computes exactly what the original does (tests/vision checks this with
OpenCV DNN, batch 1 against the original and batch 8 against batch 1).

usage: blazeface_dynamic_batch.py IN.onnx OUT.onnx
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def rewrite(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    new_nodes = []
    dropped_inits = set()
    replaced = 0
    for node in graph.node:
        if node.op_type == "ConstantOfShape":
            continue  # consumed by the Concat rewrite below
        if node.op_type == "Concat":
            pad_src = producers.get(node.input[1])
            if pad_src is None or pad_src.op_type != "ConstantOfShape":
                new_nodes.append(node)
                continue
            axis = helper.get_attribute_value(node.attribute[0])
            shape = numpy_helper.to_array(inits[pad_src.input[0]]).astype(np.int64)
            for attr in pad_src.attribute:  # a non-zero fill value would change the maths
                if attr.name == "value":
                    fill = numpy_helper.to_array(attr.t).ravel()
                    if fill.size and float(fill[0]) != 0.0:
                        raise SystemExit(f"{pad_src.name}: fill value {fill[0]} is not zero")
            rank = len(shape)
            pads = np.zeros(2 * rank, dtype=np.int64)
            pads[rank + axis] = shape[axis]  # pad at the end of the channel axis
            pads_name = node.output[0] + "_pads"
            graph.initializer.append(numpy_helper.from_array(pads, pads_name))
            dropped_inits.add(pad_src.input[0])
            new_nodes.append(helper.make_node("Pad", [node.input[0], pads_name], list(node.output),
                                              name=node.output[0] + "_as_pad", mode="constant"))
            replaced += 1
            continue
        if node.op_type == "Reshape":
            target = inits[node.input[1]]
            value = numpy_helper.to_array(target).astype(np.int64).copy()
            value[0] = -1
            target.CopyFrom(numpy_helper.from_array(value, target.name))
        new_nodes.append(node)

    if replaced == 0:
        raise SystemExit("no batch-1 padding Concat found: is this a BlazeFace tf2onnx export?")
    del graph.node[:]
    graph.node.extend(new_nodes)
    kept = [t for t in graph.initializer if t.name not in dropped_inits]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for value in list(graph.input) + list(graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    del graph.value_info[:]  # stale batch-1 shapes
    onnx.checker.check_model(model)
    return model


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    model = rewrite(onnx.load(sys.argv[1]))
    onnx.save(model, sys.argv[2])


if __name__ == "__main__":
    main()
