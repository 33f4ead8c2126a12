// XNNPACK backend: the ONNX graph lowered into an XNNPACK subgraph.
//
// XNNPACK computes in NHWC. ONNX convolutional graphs are NCHW, and exporters from NHWC
// frameworks wrap them in Transposes, so every value carries a layout: `plain` (stored as its
// ONNX shape says) or `nchw` (an ONNX NCHW tensor stored as NHWC). Transposes between the two
// cost nothing (the value is relabelled); convolutions, pooling, channel pads and per-channel
// constants are mapped to NHWC; a reshape of a channel-first tensor is only accepted where
// the data order is the same (H = W = 1 or C = 1). A graph input read directly by a
// convolution is NCHW and is transposed on the way in; an output left NCHW is transposed on
// the way out. Anything else is an error that names the operator, so `backend: auto` can
// fall back to OpenCV.
//
// Shapes are static in this XNNPACK (a 2022 snapshot): one runtime per batch size. Batches
// are split into power-of-two chunks no larger than max_chunk, so at most log2(max batch) + 1
// runtimes exist; pointers are bound once per buffer, so steady state neither allocates nor
// re-plans. max_chunk is measured at load unless given: BlazeFace runs faster image by image
// (its activations stay in cache), a ResNet faster in batches. XNNPACK may read up to
// XNN_EXTRA_BYTES past an input; Tensor keeps that much slack.
#include <pthreadpool.h>
#include <xnnpack.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>
#include <memory>
#include <limits>
#include <mutex>
#include <numeric>
#include <span>

#include "vigil/infer/backend.h"
#include "vigil/infer/backend_threads.h"
#include "vigil/infer/onnx_model.h"

namespace vigil {

namespace {

std::atomic<int> g_xnnpack_threads{1};

enum class Layout { plain, nchw };

struct Value {
  std::uint32_t id = XNN_INVALID_VALUE_ID;
  std::vector<std::int64_t> shape;  // ONNX (logical) shape
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

// Product of dims[from, to).
std::int64_t product(const std::vector<std::int64_t>& dims, std::size_t from = 0, std::size_t to = SIZE_MAX) {
  const auto first = dims.begin() + static_cast<std::ptrdiff_t>(std::min(from, dims.size()));
  const auto last = dims.begin() + static_cast<std::ptrdiff_t>(std::min(to, dims.size()));
  return std::accumulate(first, last, std::int64_t{1}, std::multiplies<>());
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

bool is_layout_op(const std::string& op) {
  return op == "Conv" || op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" ||
         op == "BatchNormalization";
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
  std::vector<std::int64_t> shape;  // logical, at this runtime's batch
  Layout layout = Layout::plain;
};

// One ONNX graph lowered at one batch size.
class Lowering {
 public:
  Lowering(const OnnxModel& model, std::int64_t batch, const std::vector<std::string>& outputs, bool input_nchw,
           WeightStore& weights)
      : model_(model), batch_(batch), outputs_(outputs), input_nchw_(input_nchw), weights_(weights) {}

  Status build(xnn_subgraph_t subgraph, std::vector<OutputBinding>& bindings) {
    subgraph_ = subgraph;
    const OnnxValueInfo& in = model_.inputs[0];
    Value input;
    input.shape = in.dims;
    input.shape[0] = batch_;
    input.layout = input_nchw_ ? Layout::nchw : Layout::plain;
    const auto dims = physical_dims(input);
    if (xnn_define_tensor_value(subgraph, xnn_datatype_fp32, dims.size(), dims.data(), nullptr, 0,
                                XNN_VALUE_FLAG_EXTERNAL_INPUT, &input.id) != xnn_status_success) {
      return fail("cannot define the input " + dims_string(in.dims));
    }
    values_[in.name] = input;
    for (const OnnxNode& node : model_.nodes) {
      node_ = &node;
      VIGIL_RETURN_IF_ERROR(lower(node));
    }
    for (std::size_t i = 0; i < outputs_.size(); ++i) {
      const auto it = values_.find(outputs_[i]);
      if (it == values_.end() || it->second.id != static_cast<std::uint32_t>(i + 1)) {
        return Error{ErrorCode::invalid_argument, model_.path + ": output '" + outputs_[i] + "' is not computed by the graph"};
      }
      bindings.push_back({outputs_[i], static_cast<std::uint32_t>(i + 1), it->second.shape, it->second.layout});
    }
    return {};
  }

 private:
  Error fail(const std::string& what) const {
    std::string where = node_ == nullptr ? std::string() : " (" + node_->op + " '" + node_->name + "')";
    return Error{ErrorCode::invalid_argument, model_.path + ": xnnpack: " + what + where};
  }

  Result<Value> input(const OnnxNode& node, std::size_t i) const {
    if (i >= node.inputs.size() || node.inputs[i].empty()) return fail("input " + std::to_string(i) + " is missing");
    const auto it = values_.find(node.inputs[i]);
    if (it == values_.end()) {
      if (model_.constant(node.inputs[i]) != nullptr) return fail("input '" + node.inputs[i] + "' is a constant here");
      return fail("input '" + node.inputs[i] + "' is not computed before this node");
    }
    return it->second;
  }

  const OnnxTensor* constant(const OnnxNode& node, std::size_t i) const {
    return i < node.inputs.size() && !node.inputs[i].empty() ? model_.constant(node.inputs[i]) : nullptr;
  }

  // Defines the value a node computes (external when it is a requested output).
  Result<std::uint32_t> define_output(const std::string& name, const Value& like) {
    const auto dims = physical_dims(like);
    std::uint32_t external = XNN_INVALID_VALUE_ID;
    std::uint32_t flags = 0;
    const auto it = std::find(outputs_.begin(), outputs_.end(), name);
    if (it != outputs_.end()) {
      external = static_cast<std::uint32_t>(it - outputs_.begin()) + 1;
      flags = XNN_VALUE_FLAG_EXTERNAL_OUTPUT;
    }
    std::uint32_t id = 0;
    if (xnn_define_tensor_value(subgraph_, xnn_datatype_fp32, dims.size(), dims.data(), nullptr, external, flags, &id) !=
        xnn_status_success) {
      return fail("cannot define value " + dims_string(like.shape));
    }
    return id;
  }

  Result<std::uint32_t> static_tensor(const std::vector<std::size_t>& dims, const std::string& key,
                                      const std::vector<float>& data) {
    const float* stored = weights_.find(key);
    if (stored == nullptr) stored = weights_.add(key, data);
    std::uint32_t id = 0;
    if (xnn_define_tensor_value(subgraph_, xnn_datatype_fp32, dims.size(), dims.data(), stored, XNN_INVALID_VALUE_ID, 0,
                                &id) != xnn_status_success) {
      return fail("cannot define constant '" + key + "'");
    }
    return id;
  }

  // Records the node's single output, defining it; returns the value to fill.
  Result<Value> emit(const OnnxNode& node, std::vector<std::int64_t> shape, Layout layout) {
    Value v;
    v.shape = std::move(shape);
    v.layout = layout;
    auto id = define_output(node.outputs.at(0), v);
    if (!id.ok()) return id.error();
    v.id = *id;
    values_[node.outputs[0]] = v;
    return v;
  }

  // A node that only relabels its input (Transpose, Identity, Flatten of ordered data); a
  // requested output gets a copy, since an external value needs its own node.
  Status alias(const OnnxNode& node, const Value& in, std::vector<std::int64_t> shape, Layout layout) {
    Value v = in;
    v.shape = std::move(shape);
    v.layout = layout;
    if (std::find(outputs_.begin(), outputs_.end(), node.outputs.at(0)) == outputs_.end()) {
      values_[node.outputs[0]] = v;
      return {};
    }
    auto out = emit(node, v.shape, layout);
    if (!out.ok()) return out.error();
    const auto dims = physical_dims(*out);
    if (xnn_define_static_reshape(subgraph_, dims.size(), dims.data(), in.id, out->id, 0) != xnn_status_success) {
      return fail("cannot copy to an output");
    }
    return {};
  }

  // A constant broadcast against `like`, in its physical layout.
  Result<std::uint32_t> broadcast_constant(const OnnxTensor& c, const Value& like, const std::string& key) {
    if (!c.is_float()) return fail("integer constant in arithmetic");
    std::vector<std::int64_t> dims = c.dims;
    if (dims.size() > like.shape.size()) return fail("constant of rank " + std::to_string(dims.size()) + " broadcast to a lower rank");
    dims.insert(dims.begin(), like.shape.size() - dims.size(), 1);
    if (like.layout == Layout::plain || product(dims) == 1) {
      const std::vector<std::size_t> physical(dims.begin(), dims.end());
      return static_tensor(physical.empty() ? std::vector<std::size_t>{1} : physical, key, c.floats);
    }
    // [a, b, c, d] (NCHW) -> [a, c, d, b]
    const std::int64_t n = dims[0], ch = dims[1], hw = dims[2] * dims[3];
    std::vector<float> data(c.floats.size());
    nchw_to_nhwc(c.floats.data(), data.data(), n, ch, hw);
    const std::vector<std::size_t> physical{static_cast<std::size_t>(dims[0]), static_cast<std::size_t>(dims[2]),
                                            static_cast<std::size_t>(dims[3]), static_cast<std::size_t>(dims[1])};
    return static_tensor(physical, key + "#nhwc", data);
  }

  static std::vector<std::int64_t> broadcast_shape(std::vector<std::int64_t> a, std::vector<std::int64_t> b) {
    if (a.size() < b.size()) std::swap(a, b);
    b.insert(b.begin(), a.size() - b.size(), 1);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = std::max(a[i], b[i]);
    return a;
  }

  Status binary(const OnnxNode& node) {
    const OnnxTensor* c0 = constant(node, 0);
    const OnnxTensor* c1 = constant(node, 1);
    if (c0 != nullptr && c1 != nullptr) return fail("both operands are constants");
    Value a, b;
    std::uint32_t ia = 0, ib = 0;
    if (c0 != nullptr || c1 != nullptr) {
      auto x = input(node, c0 != nullptr ? 1 : 0);
      if (!x.ok()) return x.error();
      const OnnxTensor& c = c0 != nullptr ? *c0 : *c1;
      auto cid = broadcast_constant(c, *x, node.inputs[c0 != nullptr ? 0 : 1]);
      if (!cid.ok()) return cid.error();
      Value cv;
      cv.shape = c.dims;
      a = c0 != nullptr ? cv : *x;
      b = c0 != nullptr ? *x : cv;
      ia = c0 != nullptr ? *cid : x->id;
      ib = c0 != nullptr ? x->id : *cid;
    } else {
      auto x = input(node, 0);
      auto y = input(node, 1);
      if (!x.ok()) return x.error();
      if (!y.ok()) return y.error();
      if (x->layout != y->layout) return fail("operands in different layouts");
      a = *x;
      b = *y;
      ia = x->id;
      ib = y->id;
    }
    const Layout layout = c0 != nullptr ? b.layout : a.layout;
    auto out = emit(node, broadcast_shape(a.shape, b.shape), layout);
    if (!out.ok()) return out.error();
    const float inf = std::numeric_limits<float>::infinity();
    xnn_status s = xnn_status_unsupported_parameter;
    if (node.op == "Add") s = xnn_define_add2(subgraph_, -inf, inf, ia, ib, out->id, 0);
    if (node.op == "Sub") s = xnn_define_subtract(subgraph_, -inf, inf, ia, ib, out->id, 0);
    if (node.op == "Mul") s = xnn_define_multiply2(subgraph_, -inf, inf, ia, ib, out->id, 0);
    if (node.op == "Div") s = xnn_define_divide(subgraph_, -inf, inf, ia, ib, out->id, 0);
    if (node.op == "Max") s = xnn_define_maximum2(subgraph_, ia, ib, out->id, 0);
    if (node.op == "Min") s = xnn_define_minimum2(subgraph_, ia, ib, out->id, 0);
    return s == xnn_status_success ? Status{} : Status{fail("rejected by XNNPACK")};
  }

  Status unary(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    auto out = emit(node, x->shape, x->layout);
    if (!out.ok()) return out.error();
    const float inf = std::numeric_limits<float>::infinity();
    xnn_status s = xnn_status_unsupported_parameter;
    if (node.op == "Relu") s = xnn_define_clamp(subgraph_, 0.0f, inf, x->id, out->id, 0);
    if (node.op == "Sigmoid") s = xnn_define_sigmoid(subgraph_, x->id, out->id, 0);
    if (node.op == "HardSwish") s = xnn_define_hardswish(subgraph_, x->id, out->id, 0);
    if (node.op == "LeakyRelu") s = xnn_define_leaky_relu(subgraph_, node.attr_float("alpha", 0.01f), x->id, out->id, 0);
    if (node.op == "Elu") s = xnn_define_elu(subgraph_, node.attr_float("alpha", 1.0f), x->id, out->id, 0);
    if (node.op == "Clip") {
      float lo = node.attr_float("min", -inf), hi = node.attr_float("max", inf);
      if (const OnnxTensor* c = constant(node, 1); c != nullptr && !c->floats.empty()) lo = c->floats[0];
      if (const OnnxTensor* c = constant(node, 2); c != nullptr && !c->floats.empty()) hi = c->floats[0];
      s = xnn_define_clamp(subgraph_, lo, hi, x->id, out->id, 0);
    }
    return s == xnn_status_success ? Status{} : Status{fail("rejected by XNNPACK")};
  }

  Result<Value> nchw_input(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    if (x->layout != Layout::nchw || x->shape.size() != 4) return fail("expects a 4-D NCHW input, got " + dims_string(x->shape));
    return x;
  }

  // pads [top, left, bottom, right] from `pads`/`auto_pad` for a window over (h, w).
  Result<std::array<std::int64_t, 4>> window_pads(const OnnxNode& node, std::int64_t h, std::int64_t w,
                                                  const std::array<std::int64_t, 2>& kernel,
                                                  const std::array<std::int64_t, 2>& stride,
                                                  const std::array<std::int64_t, 2>& dilation) {
    std::array<std::int64_t, 4> p{0, 0, 0, 0};
    const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
    if (auto_pad == "NOTSET") {
      const auto pads = node.attr_ints("pads");
      if (!pads.empty() && pads.size() != 4) return fail("expects 4 pads");
      if (!pads.empty()) p = {pads[0], pads[1], pads[2], pads[3]};
    } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const std::array<std::int64_t, 2> in{h, w};
      for (int i = 0; i < 2; ++i) {
        const std::int64_t out = (in[i] + stride[i] - 1) / stride[i];
        const std::int64_t total = std::max<std::int64_t>(0, (out - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1 - in[i]);
        const std::int64_t small = total / 2;
        p[i] = auto_pad == "SAME_UPPER" ? small : total - small;
        p[i + 2] = total - p[i];
      }
    } else if (auto_pad != "VALID") {
      return fail("auto_pad " + auto_pad);
    }
    for (const std::int64_t v : p) {
      if (v < 0) return fail("negative padding");
    }
    return p;
  }

  static std::array<std::int64_t, 2> pair(const std::vector<std::int64_t>& v, std::int64_t fallback) {
    return v.size() == 2 ? std::array<std::int64_t, 2>{v[0], v[1]} : std::array<std::int64_t, 2>{fallback, fallback};
  }

  Status conv(const OnnxNode& node) {
    auto x = nchw_input(node);
    if (!x.ok()) return x.error();
    const OnnxTensor* w = constant(node, 1);
    if (w == nullptr || w->dims.size() != 4 || !w->is_float()) return fail("weights must be a 4-D float constant");
    const std::int64_t c = x->shape[1], h = x->shape[2], wd = x->shape[3];
    const std::int64_t out_c = w->dims[0], group_in = w->dims[1], kh = w->dims[2], kw = w->dims[3];
    const std::int64_t group = node.attr_int("group", 1);
    if (group <= 0 || c % group != 0 || out_c % group != 0 || c / group != group_in) {
      return fail("weights " + dims_string(w->dims) + " do not fit input " + dims_string(x->shape) + " in " +
                  std::to_string(group) + " groups");
    }
    const auto stride = pair(node.attr_ints("strides"), 1);
    const auto dilation = pair(node.attr_ints("dilations"), 1);
    auto p = window_pads(node, h, wd, {kh, kw}, stride, dilation);
    if (!p.ok()) return p.error();
    const auto [pt, pl, pb, pr] = *p;
    const std::int64_t oh = (h + pt + pb - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
    const std::int64_t ow = (wd + pl + pr - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
    if (oh <= 0 || ow <= 0) return fail("kernel larger than its input");

    std::vector<float> bias(static_cast<std::size_t>(out_c), 0.0f);
    const std::string bias_key = node.inputs.size() > 2 && !node.inputs[2].empty() ? node.inputs[2] : node.inputs[1] + "#zero-bias";
    if (const OnnxTensor* b = constant(node, 2); b != nullptr) {
      if (b->element_count() != out_c || !b->is_float()) return fail("bias does not have one value per output channel");
      bias = b->floats;
    } else if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
      return fail("bias must be a constant");
    }
    auto bias_id = static_tensor({static_cast<std::size_t>(out_c)}, bias_key, bias);
    if (!bias_id.ok()) return bias_id.error();

    const bool depthwise = group == c && group_in == 1 && group > 1;
    std::vector<float> filter(w->floats.size());
    std::vector<std::size_t> filter_dims;
    std::string filter_key;
    if (depthwise) {  // [O, 1, kh, kw] -> [1, kh, kw, O]
      for (std::int64_t o = 0; o < out_c; ++o) {
        for (std::int64_t k = 0; k < kh * kw; ++k) filter[static_cast<std::size_t>(k * out_c + o)] = w->floats[static_cast<std::size_t>(o * kh * kw + k)];
      }
      filter_dims = {1, static_cast<std::size_t>(kh), static_cast<std::size_t>(kw), static_cast<std::size_t>(out_c)};
      filter_key = node.inputs[1] + "#dw";
    } else {  // [O, I, kh, kw] -> [O, kh, kw, I]
      for (std::int64_t o = 0; o < out_c; ++o) {
        for (std::int64_t i = 0; i < group_in; ++i) {
          for (std::int64_t k = 0; k < kh * kw; ++k) {
            filter[static_cast<std::size_t>((o * kh * kw + k) * group_in + i)] =
                w->floats[static_cast<std::size_t>((o * group_in + i) * kh * kw + k)];
          }
        }
      }
      filter_dims = {static_cast<std::size_t>(out_c), static_cast<std::size_t>(kh), static_cast<std::size_t>(kw),
                     static_cast<std::size_t>(group_in)};
      filter_key = node.inputs[1] + "#ohwi";
    }
    auto filter_id = static_tensor(filter_dims, filter_key, filter);
    if (!filter_id.ok()) return filter_id.error();
    auto out = emit(node, {x->shape[0], out_c, oh, ow}, Layout::nchw);
    if (!out.ok()) return out.error();
    const float inf = std::numeric_limits<float>::infinity();
    const auto u = [](std::int64_t v) { return static_cast<std::uint32_t>(v); };
    xnn_status s;
    if (depthwise) {
      s = xnn_define_depthwise_convolution_2d(subgraph_, u(pt), u(pr), u(pb), u(pl), u(kh), u(kw), u(stride[0]),
                                              u(stride[1]), u(dilation[0]), u(dilation[1]), u(out_c / c),
                                              static_cast<std::size_t>(c), -inf, inf, x->id, *filter_id, *bias_id,
                                              out->id, 0);
    } else {
      s = xnn_define_convolution_2d(subgraph_, u(pt), u(pr), u(pb), u(pl), u(kh), u(kw), u(stride[0]), u(stride[1]),
                                    u(dilation[0]), u(dilation[1]), u(group), static_cast<std::size_t>(group_in),
                                    static_cast<std::size_t>(out_c / group), -inf, inf, x->id, *filter_id, *bias_id,
                                    out->id, 0);
    }
    return s == xnn_status_success ? Status{} : Status{fail("rejected by XNNPACK")};
  }

  Status pool(const OnnxNode& node) {
    auto x = nchw_input(node);
    if (!x.ok()) return x.error();
    const std::int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], w = x->shape[3];
    const float inf = std::numeric_limits<float>::infinity();
    if (node.op == "GlobalAveragePool") {
      auto out = emit(node, {n, c, 1, 1}, Layout::nchw);
      if (!out.ok()) return out.error();
      return xnn_define_global_average_pooling_2d(subgraph_, -inf, inf, x->id, out->id, 0) == xnn_status_success
                 ? Status{}
                 : Status{fail("rejected by XNNPACK")};
    }
    const auto kernel = pair(node.attr_ints("kernel_shape"), 0);
    if (kernel[0] <= 0 || kernel[1] <= 0) return fail("kernel_shape must have 2 positive values");
    const auto stride = pair(node.attr_ints("strides"), 1);
    const auto dilation = pair(node.attr_ints("dilations"), 1);
    auto p = window_pads(node, h, w, kernel, stride, dilation);
    if (!p.ok()) return p.error();
    auto [pt, pl, pb, pr] = *p;
    const auto out_size = [&](std::int64_t in, std::int64_t before, std::int64_t after, int i, bool ceil) {
      const std::int64_t span = in + before + after - dilation[i] * (kernel[i] - 1) - 1;
      return (ceil ? (span + stride[i] - 1) / stride[i] : span / stride[i]) + 1;
    };
    const bool ceil = node.attr_int("ceil_mode", 0) != 0;
    const std::int64_t oh = out_size(h, pt, pb, 0, ceil), ow = out_size(w, pl, pr, 1, ceil);
    if (oh <= 0 || ow <= 0) return fail("window larger than its input");
    if (ceil) {  // grow the bottom/right padding until floor division gives the ceil size
      while (out_size(h, pt, pb, 0, false) < oh) ++pb;
      while (out_size(w, pl, pr, 1, false) < ow) ++pr;
    }
    auto out = emit(node, {n, c, oh, ow}, Layout::nchw);
    if (!out.ok()) return out.error();
    const auto u = [](std::int64_t v) { return static_cast<std::uint32_t>(v); };
    xnn_status s;
    if (node.op == "MaxPool") {
      s = xnn_define_max_pooling_2d(subgraph_, u(pt), u(pr), u(pb), u(pl), u(kernel[0]), u(kernel[1]), u(stride[0]),
                                    u(stride[1]), u(dilation[0]), u(dilation[1]), -inf, inf, x->id, out->id, 0);
    } else {
      const bool padded = pt + pl + pb + pr > 0;
      if (padded && node.attr_int("count_include_pad", 0) != 0) return fail("count_include_pad with padding");
      if (dilation[0] != 1 || dilation[1] != 1) return fail("dilated average pooling");
      s = xnn_define_average_pooling_2d(subgraph_, u(pt), u(pr), u(pb), u(pl), u(kernel[0]), u(kernel[1]), u(stride[0]),
                                        u(stride[1]), -inf, inf, x->id, out->id, 0);
    }
    return s == xnn_status_success ? Status{} : Status{fail("rejected by XNNPACK")};
  }

  Status transpose(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    const auto perm = node.attr_ints("perm");
    const auto& s = x->shape;
    if (s.size() == 4 && perm == std::vector<std::int64_t>{0, 3, 1, 2} && x->layout == Layout::plain) {
      return alias(node, *x, {s[0], s[3], s[1], s[2]}, Layout::nchw);
    }
    if (s.size() == 4 && perm == std::vector<std::int64_t>{0, 2, 3, 1} && x->layout == Layout::nchw) {
      return alias(node, *x, {s[0], s[2], s[3], s[1]}, Layout::plain);
    }
    return fail("Transpose " + dims_string(perm) + " of a tensor " + dims_string(s) + " in this layout");
  }

  // Reshape and Flatten: the data order must already be the ONNX order.
  Status reshape_to(const OnnxNode& node, const Value& x, std::vector<std::int64_t> shape) {
    const std::int64_t total = product(x.shape);
    std::int64_t known = 1;
    int unknown = -1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == 0 && i < x.shape.size()) shape[i] = x.shape[i];
      if (shape[i] == -1) {
        if (unknown >= 0) return fail("more than one -1 in the shape");
        unknown = static_cast<int>(i);
      } else {
        known *= shape[i];
      }
    }
    if (unknown >= 0 && known > 0) shape[static_cast<std::size_t>(unknown)] = total / known;
    if (product(shape) != total) return fail("cannot reshape " + dims_string(x.shape) + " to " + dims_string(shape));
    if (x.layout == Layout::nchw && x.shape[1] != 1 && x.shape[2] * x.shape[3] != 1) {
      return fail("reshape of a channel-first tensor " + dims_string(x.shape));
    }
    Value src = x;
    if (x.layout == Layout::nchw) {  // same bytes, read as the plain shape
      src.layout = Layout::plain;
    }
    auto out = emit(node, shape, Layout::plain);
    if (!out.ok()) return out.error();
    const auto dims = physical_dims(*out);
    return xnn_define_static_reshape(subgraph_, dims.size(), dims.data(), src.id, out->id, 0) == xnn_status_success
               ? Status{}
               : Status{fail("rejected by XNNPACK")};
  }

  Status reshape(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    if (node.op == "Flatten") {
      std::int64_t axis = node.attr_int("axis", 1);
      if (axis < 0) axis += static_cast<std::int64_t>(x->shape.size());
      const auto a = static_cast<std::size_t>(axis);
      return reshape_to(node, *x, {product(x->shape, 0, a), product(x->shape, a)});
    }
    const OnnxTensor* shape = constant(node, 1);
    if (shape == nullptr || shape->ints.empty()) return fail("the target shape must be an integer constant");
    std::vector<std::int64_t> target = shape->ints;
    // An exporter's fixed batch of 1 in the target follows the batch this runtime is built for.
    if (!target.empty() && target[0] == 1 && batch_ != 1 && x->shape[0] == batch_) target[0] = batch_;
    return reshape_to(node, *x, std::move(target));
  }

  Status pad(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    if (node.attr_string("mode", "constant") != "constant") return fail("mode " + node.attr_string("mode", ""));
    std::vector<std::int64_t> pads = node.attr_ints("pads");
    if (const OnnxTensor* p = constant(node, 1); p != nullptr) pads = p->ints;
    else if (node.inputs.size() > 1 && !node.inputs[1].empty()) return fail("pads must be a constant");
    float value = node.attr_float("value", 0.0f);
    if (const OnnxTensor* v = constant(node, 2); v != nullptr && !v->floats.empty()) value = v->floats[0];
    const std::size_t rank = x->shape.size();
    if (pads.size() != 2 * rank) return fail("expects " + std::to_string(2 * rank) + " pads");
    std::vector<std::int64_t> shape = x->shape;
    for (std::size_t i = 0; i < rank; ++i) {
      if (pads[i] < 0 || pads[i + rank] < 0) return fail("negative pads (cropping)");
      shape[i] += pads[i] + pads[i + rank];
    }
    std::vector<std::size_t> pre(rank), post(rank);
    for (std::size_t i = 0; i < rank; ++i) {
      const std::size_t logical = x->layout == Layout::nchw ? std::array<std::size_t, 4>{0, 2, 3, 1}[i] : i;
      pre[i] = static_cast<std::size_t>(pads[logical]);
      post[i] = static_cast<std::size_t>(pads[logical + rank]);
    }
    auto out = emit(node, shape, x->layout);
    if (!out.ok()) return out.error();
    return xnn_define_static_constant_pad(subgraph_, pre.data(), post.data(), value, x->id, out->id, 0) == xnn_status_success
               ? Status{}
               : Status{fail("rejected by XNNPACK")};
  }

  Status fully_connected(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    if (x->layout != Layout::plain || x->shape.size() < 2) return fail("expects a plain input of rank >= 2");
    const OnnxTensor* b = constant(node, 1);
    if (b == nullptr || b->dims.size() != 2 || !b->is_float()) return fail("weights must be a 2-D float constant");
    const bool gemm = node.op == "Gemm";
    if (gemm && (node.attr_int("transA", 0) != 0 || x->shape.size() != 2)) return fail("transposed or non-2-D A");
    const bool trans_b = gemm && node.attr_int("transB", 0) != 0;
    const std::int64_t k = trans_b ? b->dims[1] : b->dims[0];
    const std::int64_t n = trans_b ? b->dims[0] : b->dims[1];
    if (x->shape.back() != k) return fail("weights " + dims_string(b->dims) + " do not fit input " + dims_string(x->shape));
    const float alpha = gemm ? node.attr_float("alpha", 1.0f) : 1.0f;
    const float beta = gemm ? node.attr_float("beta", 1.0f) : 1.0f;
    std::vector<float> filter(static_cast<std::size_t>(n * k));
    for (std::int64_t o = 0; o < n; ++o) {
      for (std::int64_t i = 0; i < k; ++i) {
        filter[static_cast<std::size_t>(o * k + i)] = alpha * b->floats[static_cast<std::size_t>(trans_b ? o * k + i : i * n + o)];
      }
    }
    std::vector<float> bias(static_cast<std::size_t>(n), 0.0f);
    if (const OnnxTensor* c = gemm ? constant(node, 2) : nullptr; c != nullptr) {
      if (c->element_count() != n || !c->is_float()) return fail("bias " + dims_string(c->dims) + " is not one value per output");
      for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = beta * c->floats[i];
    } else if (gemm && node.inputs.size() > 2 && !node.inputs[2].empty()) {
      return fail("bias must be a constant");
    }
    auto filter_id = static_tensor({static_cast<std::size_t>(n), static_cast<std::size_t>(k)}, node.inputs[1] + "#fc", filter);
    if (!filter_id.ok()) return filter_id.error();
    auto bias_id = static_tensor({static_cast<std::size_t>(n)}, node.inputs[1] + "#fc-bias", bias);
    if (!bias_id.ok()) return bias_id.error();
    std::vector<std::int64_t> shape = x->shape;
    shape.back() = n;
    auto out = emit(node, shape, Layout::plain);
    if (!out.ok()) return out.error();
    const float inf = std::numeric_limits<float>::infinity();
    return xnn_define_fully_connected(subgraph_, -inf, inf, x->id, *filter_id, *bias_id, out->id, 0) == xnn_status_success
               ? Status{}
               : Status{fail("rejected by XNNPACK")};
  }

  // y = x * a + b per channel, from the batch-norm statistics.
  Status batch_norm(const OnnxNode& node) {
    auto x = nchw_input(node);
    if (!x.ok()) return x.error();
    const OnnxTensor* scale = constant(node, 1);
    const OnnxTensor* shift = constant(node, 2);
    const OnnxTensor* mean = constant(node, 3);
    const OnnxTensor* var = constant(node, 4);
    const std::int64_t c = x->shape[1];
    for (const OnnxTensor* t : {scale, shift, mean, var}) {
      if (t == nullptr || t->element_count() != c || !t->is_float()) return fail("statistics must be constants with one value per channel");
    }
    const float eps = node.attr_float("epsilon", 1e-5f);
    std::vector<float> a(static_cast<std::size_t>(c)), b(static_cast<std::size_t>(c));
    for (std::size_t i = 0; i < a.size(); ++i) {
      a[i] = scale->floats[i] / std::sqrt(var->floats[i] + eps);
      b[i] = shift->floats[i] - mean->floats[i] * a[i];
    }
    const std::vector<std::size_t> dims{1, 1, 1, static_cast<std::size_t>(c)};
    auto a_id = static_tensor(dims, node.inputs[1] + "#bn-scale", a);
    auto b_id = static_tensor(dims, node.inputs[2] + "#bn-shift", b);
    if (!a_id.ok()) return a_id.error();
    if (!b_id.ok()) return b_id.error();
    Value scaled = *x;
    std::uint32_t scaled_id = 0;
    const auto scaled_dims = physical_dims(scaled);
    if (xnn_define_tensor_value(subgraph_, xnn_datatype_fp32, scaled_dims.size(), scaled_dims.data(), nullptr,
                                XNN_INVALID_VALUE_ID, 0, &scaled_id) != xnn_status_success) {
      return fail("cannot define value");
    }
    auto out = emit(node, x->shape, Layout::nchw);
    if (!out.ok()) return out.error();
    const float inf = std::numeric_limits<float>::infinity();
    if (xnn_define_multiply2(subgraph_, -inf, inf, x->id, *a_id, scaled_id, 0) != xnn_status_success ||
        xnn_define_add2(subgraph_, -inf, inf, scaled_id, *b_id, out->id, 0) != xnn_status_success) {
      return fail("rejected by XNNPACK");
    }
    return {};
  }

  Status prelu(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    const OnnxTensor* slope = constant(node, 1);
    const auto dims = physical_dims(*x);
    const auto channels = static_cast<std::int64_t>(dims.back());
    if (slope == nullptr || !slope->is_float() || slope->element_count() != channels) {
      return fail("slope must be a constant with one value per channel");
    }
    auto slope_id = static_tensor({static_cast<std::size_t>(channels)}, node.inputs[1], slope->floats);
    if (!slope_id.ok()) return slope_id.error();
    auto out = emit(node, x->shape, x->layout);
    if (!out.ok()) return out.error();
    return xnn_define_prelu(subgraph_, x->id, *slope_id, out->id, 0) == xnn_status_success ? Status{}
                                                                                           : Status{fail("rejected by XNNPACK")};
  }

  Status softmax(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    const auto rank = static_cast<std::int64_t>(x->shape.size());
    std::int64_t axis = node.attr_int("axis", model_.opset >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    if (x->layout != Layout::plain || axis != rank - 1) return fail("softmax over an axis other than the last");
    auto out = emit(node, x->shape, Layout::plain);
    if (!out.ok()) return out.error();
    return xnn_define_softmax(subgraph_, x->id, out->id, 0) == xnn_status_success ? Status{}
                                                                                  : Status{fail("rejected by XNNPACK")};
  }

  Status lower(const OnnxNode& node) {
    const std::string& op = node.op;
    if (node.outputs.empty()) return fail("node without outputs");
    if (op == "Conv") return conv(node);
    if (op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool") return pool(node);
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Max" || op == "Min") return binary(node);
    if (op == "Relu" || op == "Sigmoid" || op == "HardSwish" || op == "LeakyRelu" || op == "Elu" || op == "Clip") {
      return unary(node);
    }
    if (op == "Transpose") return transpose(node);
    if (op == "Reshape" || op == "Flatten") return reshape(node);
    if (op == "Pad") return pad(node);
    if (op == "Gemm" || op == "MatMul") return fully_connected(node);
    if (op == "BatchNormalization") return batch_norm(node);
    if (op == "PRelu") return prelu(node);
    if (op == "Softmax") return softmax(node);
    if (op == "Identity" || op == "Dropout") {
      auto x = input(node, 0);
      if (!x.ok()) return x.error();
      return alias(node, *x, x->shape, x->layout);
    }
    return fail("operator " + op + " is not supported by vigil's XNNPACK importer");
  }

  const OnnxModel& model_;
  std::int64_t batch_;
  const std::vector<std::string>& outputs_;
  bool input_nchw_;
  WeightStore& weights_;
  xnn_subgraph_t subgraph_ = nullptr;
  const OnnxNode* node_ = nullptr;
  std::map<std::string, Value> values_;
};

struct Runtime {
  xnn_subgraph_t subgraph = nullptr;
  xnn_runtime_t runtime = nullptr;
  std::int64_t batch = 0;
  std::vector<OutputBinding> outputs;
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

class XnnpackBackend final : public Backend {
 public:
  XnnpackBackend(OnnxModel model, std::vector<std::string> outputs, bool input_nchw, int threads, int max_chunk)
      : model_(std::move(model)), output_names_(std::move(outputs)), input_nchw_(input_nchw), max_chunk_(max_chunk) {
    if (threads > 1) pool_ = pthreadpool_create(static_cast<std::size_t>(threads));
  }
  ~XnnpackBackend() override {
    runtimes_.clear();
    if (pool_ != nullptr) pthreadpool_destroy(pool_);
  }

  Result<Runtime*> runtime_for(std::int64_t batch) {
    auto it = runtimes_.find(batch);
    if (it != runtimes_.end()) return it->second.get();
    auto rt = std::make_unique<Runtime>();
    rt->batch = batch;
    if (xnn_create_subgraph(static_cast<std::uint32_t>(output_names_.size() + 1), 0, &rt->subgraph) != xnn_status_success) {
      return Error{ErrorCode::internal, "xnnpack: cannot create a subgraph"};
    }
    Lowering lowering(model_, batch, output_names_, input_nchw_, weights_);
    VIGIL_RETURN_IF_ERROR(lowering.build(rt->subgraph, rt->outputs));
    if (xnn_create_runtime_v2(rt->subgraph, pool_, 0, &rt->runtime) != xnn_status_success) {
      return Error{ErrorCode::invalid_argument, model_.path + ": XNNPACK cannot plan this graph at batch " + std::to_string(batch)};
    }
    rt->output_staging.resize(rt->outputs.size());
    for (std::size_t i = 0; i < rt->outputs.size(); ++i) {
      const OutputBinding& o = rt->outputs[i];
      if (o.shape.empty() || (dynamic_batch() && o.shape[0] != batch)) {
        return Error{ErrorCode::invalid_argument, model_.path + ": output '" + o.name + "' " + dims_string(o.shape) +
                                                      " does not follow the batch of " + std::to_string(batch)};
      }
      rt->output_staging[i].resize(static_cast<std::size_t>(product(o.shape)) + Tensor::kSlack);
    }
    rt->input_staging.resize(static_cast<std::size_t>(batch * input_item_size()) + Tensor::kSlack);
    return runtimes_.emplace(batch, std::move(rt)).first->second.get();
  }

  Status infer(const Tensor& input, std::vector<Tensor>& outputs) override {
    VIGIL_RETURN_IF_ERROR(check_input(input));
    const std::int64_t batch = input.dim(0);
    // Chunks: the largest power of two that fits, down to 1 (one chunk when the batch is fixed).
    outputs.resize(output_names_.size());
    std::int64_t done = 0;
    bool shaped = false;
    while (done < batch) {
      const std::int64_t left = max_chunk_ > 0 ? std::min<std::int64_t>(batch - done, max_chunk_) : batch - done;
      const std::int64_t chunk = dynamic_batch() ? std::int64_t{1} << static_cast<int>(std::log2(static_cast<double>(left)))
                                                 : batch;
      auto rt = runtime_for(chunk);
      if (!rt.ok()) return rt.error();
      Runtime& r = **rt;
      if (!shaped) {
        for (std::size_t i = 0; i < r.outputs.size(); ++i) {
          std::array<std::int64_t, XNN_MAX_TENSOR_DIMS> dims{};
          const auto& s = r.outputs[i].shape;
          std::copy(s.begin(), s.end(), dims.begin());
          if (dynamic_batch()) dims[0] = batch;
          outputs[i].reshape(std::span<const std::int64_t>(dims.data(), s.size()));
        }
        shaped = true;
      }
      VIGIL_RETURN_IF_ERROR(run_chunk(r, input, done, outputs, chunk == batch));
      done += chunk;
    }
    return {};
  }

  const std::vector<std::string>& output_names() const override { return output_names_; }
  std::string name() const override { return "xnnpack"; }

  // Chooses max_chunk: four images as one batch of 4 against four calls of 1 (best of 3).
  Status calibrate() {
    if (!dynamic_batch() || max_chunk_ > 0) return {};
    Tensor input;
    std::vector<std::int64_t> dims = model_.inputs[0].dims;
    dims[0] = 4;
    input.reshape(dims);
    std::fill(input.data(), input.data() + input.size(), 0.0f);
    std::vector<Tensor> outputs;
    double one_by_one = 1e9, batched = 1e9;
    for (int round = 0; round < 3; ++round) {
      for (const int chunk : {1, 4}) {
        max_chunk_ = chunk;
        VIGIL_RETURN_IF_ERROR(infer(input, outputs));  // plans the runtime, binds its buffers
        const auto start = std::chrono::steady_clock::now();
        VIGIL_RETURN_IF_ERROR(infer(input, outputs));
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        (chunk == 1 ? one_by_one : batched) = std::min(chunk == 1 ? one_by_one : batched, s);
      }
    }
    max_chunk_ = batched < 0.95 * one_by_one ? 1 << 30 : 1;
    if (max_chunk_ == 1) runtimes_.erase(4);
    return {};
  }
  int max_chunk() const { return max_chunk_; }

 private:
  bool dynamic_batch() const { return model_.inputs[0].dims[0] < 0; }
  std::int64_t input_item_size() const { return product(model_.inputs[0].dims, 1); }

  Status check_input(const Tensor& input) const {
    const auto& expected = model_.inputs[0].dims;
    bool fits = input.rank() == expected.size() && input.rank() > 0 && input.dim(0) > 0;
    for (std::size_t i = 0; fits && i < expected.size(); ++i) {
      fits = expected[i] < 0 || expected[i] == input.dim(i);
    }
    if (!fits) {
      return Error{ErrorCode::invalid_argument, model_.path + ": input " + input.shape_string() + " does not fit the model's " +
                                                    dims_string(expected)};
    }
    return {};
  }

  // Runs items [first, first + r.batch) of the call; `whole`: they are the whole call, so
  // the runtime can read and write the caller's tensors (reused from call to call) directly.
  Status run_chunk(Runtime& r, const Tensor& input, std::int64_t first, std::vector<Tensor>& outputs, bool whole) {
    const std::int64_t item = input_item_size();
    const float* in = input.data() + first * item;
    if (input_nchw_) {
      const auto& d = model_.inputs[0].dims;
      nchw_to_nhwc(in, r.input_staging.data(), r.batch, d[1], d[2] * d[3]);
      in = r.input_staging.data();
    } else if (!whole) {
      std::copy_n(in, r.batch * item, r.input_staging.data());
      in = r.input_staging.data();
    }
    std::array<xnn_external_value, 16> wanted{};
    const std::size_t count = r.outputs.size() + 1;
    if (count > wanted.size()) return Error{ErrorCode::invalid_argument, model_.path + ": more than 15 outputs"};
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
        return Error{ErrorCode::internal, model_.path + ": xnnpack: setup failed"};
      }
      r.bound.assign(wanted.begin(), wanted.begin() + static_cast<std::ptrdiff_t>(count));
    }
    if (xnn_invoke_runtime(r.runtime) != xnn_status_success) {
      return Error{ErrorCode::internal, model_.path + ": xnnpack: inference failed"};
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

  OnnxModel model_;
  std::vector<std::string> output_names_;
  bool input_nchw_;
  int max_chunk_;
  pthreadpool_t pool_ = nullptr;
  WeightStore weights_;
  std::map<std::int64_t, std::unique_ptr<Runtime>> runtimes_;
};

}  // namespace

void set_xnnpack_threads(int threads) { g_xnnpack_threads.store(threads > 0 ? threads : 1); }

Result<std::unique_ptr<Backend>> create_xnnpack_backend(const BackendOptions& options) {
  VIGIL_RETURN_IF_ERROR(initialise_xnnpack());
  auto model = read_onnx_model(options.model_path);
  if (!model.ok()) return model.error();
  if (model->inputs.size() != 1) {
    return Error{ErrorCode::invalid_argument, options.model_path + ": xnnpack: the model has " +
                                                  std::to_string(model->inputs.size()) + " inputs; vigil feeds one"};
  }
  const auto& dims = model->inputs[0].dims;
  if (dims.empty() || std::any_of(dims.begin() + 1, dims.end(), [](std::int64_t d) { return d <= 0; })) {
    return Error{ErrorCode::invalid_argument, options.model_path + ": xnnpack: the input " + dims_string(dims) +
                                                  " needs fixed sizes after the batch axis"};
  }
  const std::string& input_name = model->inputs[0].name;
  const bool input_nchw = dims.size() == 4 && std::any_of(model->nodes.begin(), model->nodes.end(), [&](const OnnxNode& n) {
                            return is_layout_op(n.op) && !n.inputs.empty() && n.inputs[0] == input_name;
                          });
  std::vector<std::string> outputs = options.output_names;
  if (outputs.empty()) {
    for (const auto& o : model->outputs) outputs.push_back(o.name);
  }
  auto backend =
      std::make_unique<XnnpackBackend>(std::move(*model), outputs, input_nchw, g_xnnpack_threads.load(), options.max_chunk);
  // Plan at batch 1 now, so an unsupported graph fails at load rather than on the first frame.
  auto planned = backend->runtime_for(dims[0] > 0 ? dims[0] : 1);
  if (!planned.ok()) return planned.error();
  VIGIL_RETURN_IF_ERROR(backend->calibrate());
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace vigil
