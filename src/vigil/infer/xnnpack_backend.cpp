// XNNPACK backend: the imported graph (model_graph.h) lowered into an XNNPACK subgraph.
//
// XNNPACK computes in NHWC. ONNX convolutional graphs are NCHW, and exporters from NHWC
// frameworks wrap them in Transposes, so every value carries a layout: `plain` (stored as its
// ONNX shape says) or `nchw` (an ONNX NCHW tensor stored as NHWC). Transposes between the two
// cost nothing (the value is relabelled); convolutions, pooling, channel pads and per-channel
// constants are mapped to NHWC; a reshape of a channel-first tensor is only accepted where
// the data order is the same (H = W = 1 or C = 1). A graph input read directly by a
// convolution is NCHW and is transposed on the way in; an output left NCHW is transposed on
// the way out. The importer's fused activation runs as the op's output clamp where it is one
// (Relu, Clip), else as its own node after it. Anything else is an error that names the op, so
// `backend: auto` can fall back to OpenCV.
//
// Shapes are static in this XNNPACK (a 2022 snapshot): one runtime per batch size. Batches
// are split into power-of-two chunks no larger than max_chunk (graph_backend.h), so at most
// log2(max batch) + 1 runtimes exist; pointers are bound once per buffer, so steady state
// neither allocates nor re-plans. XNNPACK may read up to XNN_EXTRA_BYTES past an input;
// Tensor keeps that much slack.
#include <pthreadpool.h>
#include <xnnpack.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>

#include "vigil/infer/backend.h"
#include "vigil/infer/backend_threads.h"
#include "vigil/infer/graph_backend.h"

namespace vigil {

namespace {

std::atomic<int> g_xnnpack_threads{1};

enum class Layout { plain, nchw };

struct Value {
  std::uint32_t id = XNN_INVALID_VALUE_ID;
  Dims shape;  // ONNX (logical) shape
  Layout layout = Layout::plain;
};

std::vector<std::size_t> physical_dims(const Value& v) {
  const auto& s = v.shape;
  if (v.layout == Layout::nchw) {
    return {static_cast<std::size_t>(s[0]), static_cast<std::size_t>(s[2]), static_cast<std::size_t>(s[3]),
            static_cast<std::size_t>(s[1])};
  }
  return {s.begin(), s.end()};
}

// NCHW data (any leading batch) to NHWC, and back.
void nchw_to_nhwc(const float* in, float* out, std::int64_t n, std::int64_t c, std::int64_t hw) {
  for (std::int64_t b = 0; b < n; ++b) {
    const float* src = in + b * c * hw;
    float* dst = out + b * c * hw;
    for (std::int64_t ch = 0; ch < c; ++ch) {
      for (std::int64_t p = 0; p < hw; ++p) dst[p * c + ch] = src[ch * hw + p];
    }
  }
}

void nhwc_to_nchw(const float* in, float* out, std::int64_t n, std::int64_t c, std::int64_t hw) {
  for (std::int64_t b = 0; b < n; ++b) {
    const float* src = in + b * c * hw;
    float* dst = out + b * c * hw;
    for (std::int64_t p = 0; p < hw; ++p) {
      for (std::int64_t ch = 0; ch < c; ++ch) dst[ch * hw + p] = src[p * c + ch];
    }
  }
}

bool is_layout_op(OpKind kind) {
  return kind == OpKind::conv || kind == OpKind::max_pool || kind == OpKind::average_pool ||
         kind == OpKind::global_average_pool || kind == OpKind::batch_norm || kind == OpKind::resize;
}

// Converted weights, shared by every runtime of one backend (XNNPACK keeps pointers to them).
class WeightStore {
 public:
  const float* find(const std::string& key) const {
    const auto it = index_.find(key);
    return it == index_.end() ? nullptr : it->second->data();
  }
  const float* add(const std::string& key, std::vector<float> data) {
    store_.push_back(std::move(data));
    index_[key] = &store_.back();
    return store_.back().data();
  }

 private:
  std::deque<std::vector<float>> store_;
  std::map<std::string, std::vector<float>*> index_;
};

struct OutputBinding {
  std::string name;
  std::uint32_t external_id = 0;
  Dims shape;  // logical, at this runtime's batch
  Layout layout = Layout::plain;
};

const float kInf = std::numeric_limits<float>::infinity();

// The imported graph lowered at one batch size into an XNNPACK subgraph.
class Lowering {
 public:
  Lowering(const ModelGraph& graph, std::map<std::string, Dims> shapes, bool input_nchw, WeightStore& weights)
      : g_(graph), shapes_(std::move(shapes)), input_nchw_(input_nchw), weights_(weights) {}

  Status build(xnn_subgraph_t subgraph, std::vector<OutputBinding>& bindings) {
    subgraph_ = subgraph;
    Value input;
    input.shape = shapes_.at(g_.input);
    input.layout = input_nchw_ ? Layout::nchw : Layout::plain;
    const auto dims = physical_dims(input);
    if (xnn_define_tensor_value(subgraph, xnn_datatype_fp32, dims.size(), dims.data(), nullptr, 0,
                                XNN_VALUE_FLAG_EXTERNAL_INPUT, &input.id) != xnn_status_success) {
      return fail("cannot define the input " + dims_string(input.shape));
    }
    values_[g_.input] = input;
    for (const GraphOp& op : g_.ops) {
      op_ = &op;
      VIGIL_RETURN_IF_ERROR(lower(op));
    }
    op_ = nullptr;
    for (std::size_t i = 0; i < g_.outputs.size(); ++i) {
      const auto it = values_.find(g_.outputs[i]);
      if (it == values_.end() || it->second.id != static_cast<std::uint32_t>(i + 1)) {
        return fail("output '" + g_.outputs[i] + "' is not computed by the graph");
      }
      bindings.push_back({g_.outputs[i], static_cast<std::uint32_t>(i + 1), it->second.shape, it->second.layout});
    }
    return {};
  }

 private:
  Error fail(const std::string& what) const {
    const std::string where = op_ == nullptr ? std::string() : " (" + op_->describe() + ")";
    return Error{ErrorCode::invalid_argument, g_.path + ": xnnpack: " + what + where};
  }

  Status check(xnn_status s) const { return s == xnn_status_success ? Status{} : Status{fail("rejected by XNNPACK")}; }

  Result<Value> input(const GraphOp& op, std::size_t i) const {
    const auto it = values_.find(op.inputs.at(i));
    if (it == values_.end()) return fail("input '" + op.inputs[i] + "' is not computed before this op");
    return it->second;
  }

  Result<Value> nchw_input(const GraphOp& op) const {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    if (x->layout != Layout::nchw || x->shape.size() != 4) return fail("expects a 4-D NCHW input, got " + dims_string(x->shape));
    return x;
  }

  // Defines the value an op computes (external when it is a requested output).
  Result<std::uint32_t> define_value(const std::string& name, const Value& like) {
    const auto dims = physical_dims(like);
    std::uint32_t external = XNN_INVALID_VALUE_ID;
    std::uint32_t flags = 0;
    const auto it = std::find(g_.outputs.begin(), g_.outputs.end(), name);
    if (it != g_.outputs.end()) {
      external = static_cast<std::uint32_t>(it - g_.outputs.begin()) + 1;
      flags = XNN_VALUE_FLAG_EXTERNAL_OUTPUT;
    }
    std::uint32_t id = 0;
    if (xnn_define_tensor_value(subgraph_, xnn_datatype_fp32, dims.size(), dims.data(), nullptr, external, flags, &id) !=
        xnn_status_success) {
      return fail("cannot define value " + dims_string(like.shape));
    }
    return id;
  }

  // An internal value between two nodes of one op.
  Result<std::uint32_t> define_internal(const Value& like) {
    const auto dims = physical_dims(like);
    std::uint32_t id = 0;
    if (xnn_define_tensor_value(subgraph_, xnn_datatype_fp32, dims.size(), dims.data(), nullptr, XNN_INVALID_VALUE_ID, 0, &id) !=
        xnn_status_success) {
      return fail("cannot define value " + dims_string(like.shape));
    }
    return id;
  }

  Result<std::uint32_t> static_tensor(const std::vector<std::size_t>& dims, const std::string& key, const std::vector<float>& data) {
    const float* stored = weights_.find(key);
    if (stored == nullptr) stored = weights_.add(key, data);
    std::uint32_t id = 0;
    if (xnn_define_tensor_value(subgraph_, xnn_datatype_fp32, dims.size(), dims.data(), stored, XNN_INVALID_VALUE_ID, 0, &id) !=
        xnn_status_success) {
      return fail("cannot define constant '" + key + "'");
    }
    return id;
  }

  // The op's result. Its node writes `id`: the output itself, or, when a fused activation
  // must run as a node of its own after it, an internal value that node reads (finish()).
  struct Emitted {
    Value out;
    std::uint32_t id = 0;
    float min = -kInf, max = kInf;  // the node's output clamp (Relu, Clip fused)
  };
  Result<Emitted> emit(const GraphOp& op, Layout layout) {
    Emitted e;
    e.out.shape = shapes_.at(op.output);
    e.out.layout = layout;
    auto id = define_value(op.output, e.out);
    if (!id.ok()) return id.error();
    e.out.id = *id;
    e.id = *id;
    values_[op.output] = e.out;
    const Activation& a = op.kind == OpKind::activation ? Activation{} : op.activation;
    if (a.kind == Activation::relu || a.kind == Activation::clip) {
      e.min = a.kind == Activation::relu ? 0.0f : a.alpha;
      e.max = a.kind == Activation::relu ? kInf : a.beta;
    } else if (a.kind != Activation::none) {
      auto inner = define_internal(e.out);
      if (!inner.ok()) return inner.error();
      e.id = *inner;
    }
    return e;
  }

  // After the op's node: its fused activation as a node of its own, when it needs one.
  Status finish(const GraphOp& op, const Emitted& e) {
    if (e.id == e.out.id) return {};
    return activation_node(op.activation, e.id, e.out.id);
  }

  Status activation_node(const Activation& a, std::uint32_t in, std::uint32_t out) {
    xnn_status s = xnn_status_unsupported_parameter;
    switch (a.kind) {
      case Activation::none: s = xnn_define_clamp(subgraph_, -kInf, kInf, in, out, 0); break;
      case Activation::relu: s = xnn_define_clamp(subgraph_, 0.0f, kInf, in, out, 0); break;
      case Activation::clip: s = xnn_define_clamp(subgraph_, a.alpha, a.beta, in, out, 0); break;
      case Activation::sigmoid: s = xnn_define_sigmoid(subgraph_, in, out, 0); break;
      case Activation::hardswish: s = xnn_define_hardswish(subgraph_, in, out, 0); break;
      case Activation::leaky_relu: s = xnn_define_leaky_relu(subgraph_, a.alpha, in, out, 0); break;
      case Activation::elu: s = xnn_define_elu(subgraph_, a.alpha, in, out, 0); break;
    }
    return check(s);
  }

  // An op that only relabels its input (Transpose, Identity, a reshape of ordered data); a
  // requested output gets a copy, since an external value needs its own node.
  Status alias(const GraphOp& op, const Value& in, Layout layout) {
    Value v = in;
    v.shape = shapes_.at(op.output);
    v.layout = layout;
    if (std::find(g_.outputs.begin(), g_.outputs.end(), op.output) == g_.outputs.end()) {
      values_[op.output] = v;
      return {};
    }
    auto out = emit(op, layout);
    if (!out.ok()) return out.error();
    const auto dims = physical_dims(out->out);
    return check(xnn_define_static_reshape(subgraph_, dims.size(), dims.data(), in.id, out->out.id, 0));
  }

  // A constant broadcast against `like`, in its physical layout.
  Result<std::uint32_t> broadcast_constant(const OnnxTensor& c, const Value& like, const std::string& key) {
    Dims dims = c.dims;
    if (dims.size() > like.shape.size()) return fail("constant of rank " + std::to_string(dims.size()) + " broadcast to a lower rank");
    dims.insert(dims.begin(), like.shape.size() - dims.size(), 1);
    if (like.layout == Layout::plain || product(dims) == 1) {
      const std::vector<std::size_t> physical(dims.begin(), dims.end());
      return static_tensor(physical.empty() ? std::vector<std::size_t>{1} : physical, key, c.floats);
    }
    // [a, b, c, d] (NCHW) -> [a, c, d, b]
    std::vector<float> data(c.floats.size());
    nchw_to_nhwc(c.floats.data(), data.data(), dims[0], dims[1], dims[2] * dims[3]);
    const std::vector<std::size_t> physical{static_cast<std::size_t>(dims[0]), static_cast<std::size_t>(dims[2]),
                                            static_cast<std::size_t>(dims[3]), static_cast<std::size_t>(dims[1])};
    return static_tensor(physical, key + "#nhwc", data);
  }

  Status binary(const GraphOp& op) {
    const OnnxTensor* c0 = g_.constant(op.inputs[0]);
    const OnnxTensor* c1 = g_.constant(op.inputs[1]);
    std::uint32_t ia = 0, ib = 0;
    Layout layout = Layout::plain;
    if (c0 != nullptr || c1 != nullptr) {
      auto x = input(op, c0 != nullptr ? 1 : 0);
      if (!x.ok()) return x.error();
      auto cid = broadcast_constant(c0 != nullptr ? *c0 : *c1, *x, op.inputs[c0 != nullptr ? 0 : 1]);
      if (!cid.ok()) return cid.error();
      ia = c0 != nullptr ? *cid : x->id;
      ib = c0 != nullptr ? x->id : *cid;
      layout = x->layout;
    } else {
      auto x = input(op, 0);
      auto y = input(op, 1);
      if (!x.ok()) return x.error();
      if (!y.ok()) return y.error();
      if (x->layout != y->layout) return fail("operands in different layouts");
      ia = x->id;
      ib = y->id;
      layout = x->layout;
    }
    auto e = emit(op, layout);
    if (!e.ok()) return e.error();
    xnn_status s = xnn_status_unsupported_parameter;
    switch (op.binary) {
      case BinaryOp::add: s = xnn_define_add2(subgraph_, e->min, e->max, ia, ib, e->id, 0); break;
      case BinaryOp::sub: s = xnn_define_subtract(subgraph_, e->min, e->max, ia, ib, e->id, 0); break;
      case BinaryOp::mul: s = xnn_define_multiply2(subgraph_, e->min, e->max, ia, ib, e->id, 0); break;
      case BinaryOp::div: s = xnn_define_divide(subgraph_, e->min, e->max, ia, ib, e->id, 0); break;
      case BinaryOp::max: s = xnn_define_maximum2(subgraph_, ia, ib, e->id, 0); break;
      case BinaryOp::min: s = xnn_define_minimum2(subgraph_, ia, ib, e->id, 0); break;
    }
    if ((op.binary == BinaryOp::max || op.binary == BinaryOp::min) && (e->min != -kInf || e->max != kInf)) {
      return fail("a clamp fused into Max or Min");
    }
    VIGIL_RETURN_IF_ERROR(check(s));
    return finish(op, *e);
  }

  Status activation(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    auto e = emit(op, x->layout);
    if (!e.ok()) return e.error();
    return activation_node(op.activation, x->id, e->id);
  }

  // Weights [O, I, kh, kw] as XNNPACK wants them: [1, kh, kw, O] depthwise, else [O, kh, kw, I].
  static std::vector<float> filter_of(const OnnxTensor& w, bool depthwise) {
    const std::int64_t out_c = w.dims[0], in_c = w.dims[1], k = w.dims[2] * w.dims[3];
    std::vector<float> filter(w.floats.size());
    for (std::int64_t o = 0; o < out_c; ++o) {
      for (std::int64_t i = 0; i < in_c; ++i) {
        for (std::int64_t p = 0; p < k; ++p) {
          const auto from = static_cast<std::size_t>((o * in_c + i) * k + p);
          filter[static_cast<std::size_t>(depthwise ? p * out_c + o : (o * k + p) * in_c + i)] = w.floats[from];
        }
      }
    }
    return filter;
  }

  Status conv(const GraphOp& op) {
    auto x = nchw_input(op);
    if (!x.ok()) return x.error();
    const OnnxTensor& w = *g_.constant(op.inputs[1]);
    const std::int64_t c = x->shape[1], out_c = w.dims[0], group_in = w.dims[1], kh = w.dims[2], kw = w.dims[3];
    const bool depthwise = op.group == c && group_in == 1 && op.group > 1;
    const auto u = [](std::int64_t v) { return static_cast<std::uint32_t>(v); };
    const auto z = [](std::int64_t v) { return static_cast<std::size_t>(v); };
    auto bias_id = static_tensor({z(out_c)}, op.inputs[2], g_.constant(op.inputs[2])->floats);
    auto filter_id = static_tensor(depthwise ? std::vector<std::size_t>{1, z(kh), z(kw), z(out_c)}
                                             : std::vector<std::size_t>{z(out_c), z(kh), z(kw), z(group_in)},
                                   op.inputs[1] + (depthwise ? "#dw" : "#ohwi"), filter_of(w, depthwise));
    if (!bias_id.ok()) return bias_id.error();
    if (!filter_id.ok()) return filter_id.error();
    auto e = emit(op, Layout::nchw);
    if (!e.ok()) return e.error();
    const Window& win = op.window;
    const auto [pt, pl, pb, pr] = win.pads;
    xnn_status s;
    if (depthwise) {
      s = xnn_define_depthwise_convolution_2d(subgraph_, u(pt), u(pr), u(pb), u(pl), u(kh), u(kw), u(win.stride[0]), u(win.stride[1]),
                                              u(win.dilation[0]), u(win.dilation[1]), u(out_c / c), z(c), e->min, e->max, x->id,
                                              *filter_id, *bias_id, e->id, 0);
    } else {
      s = xnn_define_convolution_2d(subgraph_, u(pt), u(pr), u(pb), u(pl), u(kh), u(kw), u(win.stride[0]), u(win.stride[1]),
                                    u(win.dilation[0]), u(win.dilation[1]), u(op.group), z(group_in), z(out_c / op.group), e->min,
                                    e->max, x->id, *filter_id, *bias_id, e->id, 0);
    }
    VIGIL_RETURN_IF_ERROR(check(s));
    return finish(op, *e);
  }

  Status pool(const GraphOp& op) {
    auto x = nchw_input(op);
    if (!x.ok()) return x.error();
    auto e = emit(op, Layout::nchw);
    if (!e.ok()) return e.error();
    if (op.kind == OpKind::global_average_pool) return check(xnn_define_global_average_pooling_2d(subgraph_, -kInf, kInf, x->id, e->id, 0));
    const Window& w = op.window;
    const auto u = [](std::int64_t v) { return static_cast<std::uint32_t>(v); };
    const auto [pt, pl, pb, pr] = w.pads;
    if (op.kind == OpKind::max_pool) {
      return check(xnn_define_max_pooling_2d(subgraph_, u(pt), u(pr), u(pb), u(pl), u(w.kernel[0]), u(w.kernel[1]), u(w.stride[0]),
                                             u(w.stride[1]), u(w.dilation[0]), u(w.dilation[1]), -kInf, kInf, x->id, e->id, 0));
    }
    if (w.dilation[0] != 1 || w.dilation[1] != 1) return fail("dilated average pooling");
    return check(xnn_define_average_pooling_2d(subgraph_, u(pt), u(pr), u(pb), u(pl), u(w.kernel[0]), u(w.kernel[1]), u(w.stride[0]),
                                               u(w.stride[1]), -kInf, kInf, x->id, e->id, 0));
  }

  Status transpose(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    if (x->shape.size() == 4 && op.perm == Dims{0, 3, 1, 2} && x->layout == Layout::plain) return alias(op, *x, Layout::nchw);
    if (x->shape.size() == 4 && op.perm == Dims{0, 2, 3, 1} && x->layout == Layout::nchw) return alias(op, *x, Layout::plain);
    return fail("Transpose " + dims_string(op.perm) + " of a tensor " + dims_string(x->shape) + " in this layout");
  }

  // Reshape and Flatten: the data order must already be the ONNX order.
  Status reshape(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    if (x->layout == Layout::nchw && x->shape[1] != 1 && x->shape[2] * x->shape[3] != 1) {
      return fail("reshape of a channel-first tensor " + dims_string(x->shape));
    }
    Value src = *x;
    src.layout = Layout::plain;  // same bytes, read as the plain shape
    auto e = emit(op, Layout::plain);
    if (!e.ok()) return e.error();
    const auto dims = physical_dims(e->out);
    return check(xnn_define_static_reshape(subgraph_, dims.size(), dims.data(), src.id, e->id, 0));
  }

  Status pad(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    const std::size_t rank = x->shape.size();
    std::vector<std::size_t> pre(rank), post(rank);
    for (std::size_t i = 0; i < rank; ++i) {
      const std::size_t logical = x->layout == Layout::nchw ? std::array<std::size_t, 4>{0, 2, 3, 1}[i] : i;
      pre[i] = static_cast<std::size_t>(op.pads[logical]);
      post[i] = static_cast<std::size_t>(op.pads[logical + rank]);
    }
    auto e = emit(op, x->layout);
    if (!e.ok()) return e.error();
    return check(xnn_define_static_constant_pad(subgraph_, pre.data(), post.data(), op.pad_value, x->id, e->id, 0));
  }

  Status fully_connected(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    if (x->layout != Layout::plain || x->shape.size() < 2) return fail("expects a plain input of rank >= 2");
    const OnnxTensor& w = *g_.constant(op.inputs[1]);
    const OnnxTensor& b = *g_.constant(op.inputs[2]);
    const auto n = static_cast<std::size_t>(w.dims[0]), k = static_cast<std::size_t>(w.dims[1]);
    auto filter_id = static_tensor({n, k}, op.inputs[1], w.floats);
    auto bias_id = static_tensor({n}, op.inputs[2], b.floats);
    if (!filter_id.ok()) return filter_id.error();
    if (!bias_id.ok()) return bias_id.error();
    auto e = emit(op, Layout::plain);
    if (!e.ok()) return e.error();
    VIGIL_RETURN_IF_ERROR(check(xnn_define_fully_connected(subgraph_, e->min, e->max, x->id, *filter_id, *bias_id, e->id, 0)));
    return finish(op, *e);
  }

  // y = x * scale + shift per channel.
  Status batch_norm(const GraphOp& op) {
    auto x = nchw_input(op);
    if (!x.ok()) return x.error();
    const std::vector<std::size_t> dims{1, 1, 1, static_cast<std::size_t>(x->shape[1])};
    auto a_id = static_tensor(dims, op.inputs[1], g_.constant(op.inputs[1])->floats);
    auto b_id = static_tensor(dims, op.inputs[2], g_.constant(op.inputs[2])->floats);
    if (!a_id.ok()) return a_id.error();
    if (!b_id.ok()) return b_id.error();
    auto scaled = define_internal(*x);
    if (!scaled.ok()) return scaled.error();
    auto e = emit(op, Layout::nchw);
    if (!e.ok()) return e.error();
    VIGIL_RETURN_IF_ERROR(check(xnn_define_multiply2(subgraph_, -kInf, kInf, x->id, *a_id, *scaled, 0)));
    return check(xnn_define_add2(subgraph_, -kInf, kInf, *scaled, *b_id, e->id, 0));
  }

  Status prelu(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    if (physical_dims(*x).back() != static_cast<std::size_t>(x->shape[1])) return fail("slope per channel of a channel-last value");
    auto slope_id = static_tensor({static_cast<std::size_t>(x->shape[1])}, op.inputs[1], g_.constant(op.inputs[1])->floats);
    if (!slope_id.ok()) return slope_id.error();
    auto e = emit(op, x->layout);
    if (!e.ok()) return e.error();
    return check(xnn_define_prelu(subgraph_, x->id, *slope_id, e->id, 0));
  }

  Status softmax(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    if (x->layout != Layout::plain || op.axis != static_cast<std::int64_t>(x->shape.size()) - 1) {
      return fail("softmax over an axis other than the last");
    }
    auto e = emit(op, Layout::plain);
    if (!e.ok()) return e.error();
    return check(xnn_define_softmax(subgraph_, x->id, e->id, 0));
  }

  Status resize(const GraphOp& op) {
    auto x = nchw_input(op);
    if (!x.ok()) return x.error();
    auto e = emit(op, Layout::nchw);
    if (!e.ok()) return e.error();
    const Dims& out = shapes_.at(op.output);
    const std::uint32_t flags = op.resize == ResizeMode::asymmetric      ? XNN_FLAG_TENSORFLOW_LEGACY_MODE
                                : op.resize == ResizeMode::align_corners ? XNN_FLAG_ALIGN_CORNERS
                                                                         : 0;
    return check(xnn_define_static_resize_bilinear_2d(subgraph_, static_cast<std::size_t>(out[2]), static_cast<std::size_t>(out[3]),
                                                      x->id, e->id, flags));
  }

  Status lower(const GraphOp& op) {
    switch (op.kind) {
      case OpKind::conv: return conv(op);
      case OpKind::max_pool:
      case OpKind::average_pool:
      case OpKind::global_average_pool: return pool(op);
      case OpKind::binary: return binary(op);
      case OpKind::activation: return activation(op);
      case OpKind::transpose: return transpose(op);
      case OpKind::reshape: return reshape(op);
      case OpKind::pad: return pad(op);
      case OpKind::fully_connected: return fully_connected(op);
      case OpKind::batch_norm: return batch_norm(op);
      case OpKind::prelu: return prelu(op);
      case OpKind::softmax: return softmax(op);
      case OpKind::resize: return resize(op);
      case OpKind::identity: {
        auto x = input(op, 0);
        if (!x.ok()) return x.error();
        return alias(op, *x, x->layout);
      }
    }
    return fail("operator " + op.op_type + " is not lowered to XNNPACK");
  }

  const ModelGraph& g_;
  const std::map<std::string, Dims> shapes_;  // every value's dims at this batch
  bool input_nchw_;
  WeightStore& weights_;
  xnn_subgraph_t subgraph_ = nullptr;
  const GraphOp* op_ = nullptr;
  std::map<std::string, Value> values_;
};

struct Runtime {
  xnn_subgraph_t subgraph = nullptr;
  xnn_runtime_t runtime = nullptr;
  std::int64_t batch = 0;
  std::vector<OutputBinding> outputs;
  std::vector<Dims> output_dims;  // of each output, at this batch
  // Fixed buffers the runtime is bound to when the call's own tensors cannot be: the input
  // transposed on the way in, outputs left NCHW, and the chunks of a split batch (binding
  // each chunk's place in the caller's tensors would re-run xnn_setup_runtime every chunk).
  std::vector<float> input_staging;
  std::vector<std::vector<float>> output_staging;
  std::vector<xnn_external_value> bound;            // pointers the runtime was last set up with

  Runtime() = default;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime() {
    if (runtime != nullptr) xnn_delete_runtime(runtime);
    if (subgraph != nullptr) xnn_delete_subgraph(subgraph);
  }
};

Status initialise_xnnpack() {
  static std::once_flag once;
  static xnn_status status = xnn_status_success;
  std::call_once(once, [] { status = xnn_initialize(nullptr); });
  if (status != xnn_status_success) {
    return Error{ErrorCode::failed_precondition, "XNNPACK does not run on this CPU (xnn_initialize failed)"};
  }
  return {};
}

class XnnpackBackend final : public GraphBackend {
 public:
  XnnpackBackend(ModelGraph graph, int threads, int max_chunk)
      : GraphBackend(std::move(graph), max_chunk, true, threads) {
    const Dims& dims = this->graph().input_dims;
    const std::string& input = this->graph().input;
    input_nchw_ = dims.size() == 4 && std::any_of(this->graph().ops.begin(), this->graph().ops.end(), [&](const GraphOp& op) {
                    return is_layout_op(op.kind) && op.inputs[0] == input;
                  });
    if (threads > 1) pool_ = pthreadpool_create(static_cast<std::size_t>(threads));
  }
  ~XnnpackBackend() override {
    runtimes_.clear();
    if (pool_ != nullptr) pthreadpool_destroy(pool_);
  }

  std::string name() const override { return "xnnpack"; }

 private:
  Result<const std::vector<Dims>*> prepare(std::int64_t batch) override {
    auto it = runtimes_.find(batch);
    if (it == runtimes_.end()) {
      auto rt = build(batch);
      if (!rt.ok()) return rt.error();
      it = runtimes_.emplace(batch, std::move(rt).value()).first;
    }
    return &it->second->output_dims;
  }

  Result<std::unique_ptr<Runtime>> build(std::int64_t batch) {
    auto rt = std::make_unique<Runtime>();
    rt->batch = batch;
    if (xnn_create_subgraph(static_cast<std::uint32_t>(graph().outputs.size() + 1), 0, &rt->subgraph) != xnn_status_success) {
      return Error{ErrorCode::internal, "xnnpack: cannot create a subgraph"};
    }
    auto shapes = graph().shapes(batch);
    if (!shapes.ok()) return shapes.error();
    Lowering lowering(graph(), std::move(shapes).value(), input_nchw_, weights_);
    VIGIL_RETURN_IF_ERROR(lowering.build(rt->subgraph, rt->outputs));
    if (xnn_create_runtime_v2(rt->subgraph, pool_, 0, &rt->runtime) != xnn_status_success) {
      return fail("XNNPACK cannot plan this graph at batch " + std::to_string(batch));
    }
    rt->output_staging.resize(rt->outputs.size());
    for (std::size_t i = 0; i < rt->outputs.size(); ++i) {
      rt->output_dims.push_back(rt->outputs[i].shape);
      rt->output_staging[i].resize(static_cast<std::size_t>(product(rt->outputs[i].shape)) + Tensor::kSlack);
    }
    rt->input_staging.resize(static_cast<std::size_t>(batch * graph().input_item_size()) + Tensor::kSlack);
    return rt;
  }

  void forget(std::int64_t batch) override { runtimes_.erase(batch); }

  // Runs items [first, first + r.batch) of the call; `whole`: they are the whole call, so
  // the runtime can read and write the caller's tensors (reused from call to call) directly.
  Status run_chunk(std::int64_t batch, const Tensor& input, std::int64_t first, std::vector<Tensor>& outputs, bool whole) override {
    Runtime& r = *runtimes_.at(batch);
    const std::int64_t item = graph().input_item_size();
    const float* in = input.data() + first * item;
    if (input_nchw_) {
      const Dims& d = graph().input_dims;
      nchw_to_nhwc(in, r.input_staging.data(), r.batch, d[1], d[2] * d[3]);
      in = r.input_staging.data();
    } else if (!whole) {
      std::copy_n(in, r.batch * item, r.input_staging.data());
      in = r.input_staging.data();
    }
    std::array<xnn_external_value, 16> wanted{};
    const std::size_t count = r.outputs.size() + 1;
    if (count > wanted.size()) return Error{ErrorCode::invalid_argument, graph().path + ": more than 15 outputs"};
    wanted[0] = {0, const_cast<float*>(in)};
    for (std::size_t i = 0; i < r.outputs.size(); ++i) {
      const bool staged = r.outputs[i].layout == Layout::nchw || !whole;
      float* dst = staged ? r.output_staging[i].data()
                          : outputs[i].data() + first * static_cast<std::int64_t>(outputs[i].item_size());
      wanted[i + 1] = {r.outputs[i].external_id, dst};
    }
    const bool same = r.bound.size() == count && std::equal(r.bound.begin(), r.bound.end(), wanted.begin(), [](const auto& a, const auto& b) {
                        return a.id == b.id && a.data == b.data;
                      });
    if (!same) {
      if (xnn_setup_runtime(r.runtime, count, wanted.data()) != xnn_status_success) {
        return Error{ErrorCode::internal, graph().path + ": xnnpack: setup failed"};
      }
      r.bound.assign(wanted.begin(), wanted.begin() + static_cast<std::ptrdiff_t>(count));
    }
    if (xnn_invoke_runtime(r.runtime) != xnn_status_success) {
      return Error{ErrorCode::internal, graph().path + ": xnnpack: inference failed"};
    }
    if (pool_ != nullptr) {
      // The pool's workers spin-wait for the next command (about 20 ms each on this AMD) and
      // only then sleep: between the frames of live cameras that burned most of a core (a
      // worker serving 20 requests a second ran at 0.45 cores). An empty command with the
      // yield flag sends them to a kernel wait at once. (Debian's XNNPACK ignores the
      // runtime's XNN_FLAG_YIELD_WORKERS.)
      pthreadpool_parallelize_1d(pool_, [](void*, std::size_t) {}, nullptr, pthreadpool_get_threads_count(pool_),
                                 PTHREADPOOL_FLAG_YIELD_WORKERS);
    }
    for (std::size_t i = 0; i < r.outputs.size(); ++i) {
      float* dst = outputs[i].data() + first * static_cast<std::int64_t>(outputs[i].item_size());
      const auto& s = r.outputs[i].shape;
      if (r.outputs[i].layout == Layout::nchw) {
        nhwc_to_nchw(r.output_staging[i].data(), dst, s[0], s[1], s[2] * s[3]);
      } else if (!whole) {
        std::copy_n(r.output_staging[i].data(), product(s), dst);
      }
    }
    return {};
  }

  bool input_nchw_ = false;
  pthreadpool_t pool_ = nullptr;
  WeightStore weights_;
  std::map<std::int64_t, std::unique_ptr<Runtime>> runtimes_;
};

}  // namespace

void set_xnnpack_threads(int threads) { g_xnnpack_threads.store(threads > 0 ? threads : 1); }

Result<std::unique_ptr<Backend>> create_xnnpack_backend(const BackendOptions& options) {
  VIGIL_RETURN_IF_ERROR(initialise_xnnpack());
  auto graph = import_onnx_model(options.model_path, {options.output_names});
  if (!graph.ok()) return graph.error();
  const int threads = options.threads > 0 ? options.threads : g_xnnpack_threads.load();
  auto backend = std::make_unique<XnnpackBackend>(std::move(graph).value(), threads, options.max_chunk);
  VIGIL_RETURN_IF_ERROR(backend->load());
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace vigil
