#include "vigil/infer/model_graph.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <optional>

namespace vigil {

namespace {

std::array<std::int64_t, 2> pair_of(const std::vector<std::int64_t>& v, std::int64_t fallback) {
  return v.size() == 2 ? std::array<std::int64_t, 2>{v[0], v[1]} : std::array<std::int64_t, 2>{fallback, fallback};
}

Dims broadcast(Dims a, Dims b) {
  if (a.size() < b.size()) std::swap(a, b);
  b.insert(b.begin(), a.size() - b.size(), 1);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = a[i] == 1 ? b[i] : a[i];
  return a;
}

bool broadcasts(Dims a, Dims b) {
  if (a.size() < b.size()) std::swap(a, b);
  b.insert(b.begin(), a.size() - b.size(), 1);
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i] && a[i] != 1 && b[i] != 1) return false;
  }
  return true;
}

// The flat index into a tensor of `dims` broadcast to `out` for the flat index `i` of `out`.
std::size_t broadcast_index(std::size_t i, const Dims& out, const Dims& dims) {
  std::size_t index = 0, stride = 1;
  for (std::size_t k = 0; k < out.size(); ++k) {
    const std::size_t axis = out.size() - 1 - k;
    const auto coordinate = static_cast<std::int64_t>(i % static_cast<std::size_t>(out[axis]));
    i /= static_cast<std::size_t>(out[axis]);
    if (k < dims.size()) {
      const std::int64_t d = dims[dims.size() - 1 - k];
      if (d != 1) index += static_cast<std::size_t>(coordinate) * stride;
      stride *= static_cast<std::size_t>(d);
    }
  }
  return index;
}

float apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::max: return std::max(a, b);
    case BinaryOp::min: return std::min(a, b);
  }
  return 0;
}

// The target of a reshape of `in` (0 keeps that dim, -1 takes the rest; an exporter's fixed
// batch of 1 follows the batch the graph runs at).
Result<Dims> reshape_target(Dims target, const Dims& in, std::int64_t batch, const std::string& where) {
  if (!target.empty() && target[0] == 1 && batch != 1 && !in.empty() && in[0] == batch) target[0] = batch;
  const std::int64_t total = product(in);
  std::int64_t known = 1;
  int unknown = -1;
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0 && i < in.size()) target[i] = in[i];
    if (target[i] == -1) {
      if (unknown >= 0) return Error{ErrorCode::invalid_argument, where + ": more than one -1 in the shape"};
      unknown = static_cast<int>(i);
    } else if (target[i] < 0) {
      return Error{ErrorCode::invalid_argument, where + ": a negative size in the shape " + dims_string(target)};
    } else {
      known *= target[i];
    }
  }
  if (unknown >= 0 && known > 0) target[static_cast<std::size_t>(unknown)] = total / known;
  if (product(target) != total) {
    return Error{ErrorCode::invalid_argument, where + ": cannot reshape " + dims_string(in) + " to " + dims_string(target)};
  }
  return target;
}

std::optional<BinaryOp> binary_of(const std::string& op) {
  if (op == "Add") return BinaryOp::add;
  if (op == "Sub") return BinaryOp::sub;
  if (op == "Mul") return BinaryOp::mul;
  if (op == "Div") return BinaryOp::div;
  if (op == "Max") return BinaryOp::max;
  if (op == "Min") return BinaryOp::min;
  return std::nullopt;
}

// The importer's state: the graph so far and every value's dims at batch 1.
class Importer {
 public:
  Importer(OnnxModel model, const ImportOptions& options) : model_(std::move(model)), options_(options) {}

  Result<ModelGraph> run() {
    g_.path = model_.path;
    VIGIL_RETURN_IF_ERROR(check_input());
    g_.constants = std::move(model_.constants);
    dims_[g_.input] = at_batch_one(g_.input_dims);
    for (const OnnxNode& node : model_.nodes) {
      node_ = &node;
      if (node.outputs.empty() || node.outputs[0].empty()) return fail("a node without an output");
      if (all_inputs_constant(node)) {
        VIGIL_RETURN_IF_ERROR(fold(node));
        continue;
      }
      auto op = translate(node);
      if (!op.ok()) return op.error();
      auto out = output_dims(*op, dims_, 1);
      if (!out.ok()) return out.error();
      dims_[op->output] = *out;
      g_.ops.push_back(std::move(op).value());
    }
    node_ = nullptr;
    g_.outputs = options_.outputs;
    if (g_.outputs.empty()) {
      for (const auto& o : model_.outputs) g_.outputs.push_back(o.name);
    }
    for (const std::string& o : g_.outputs) {
      if (!dims_.count(o)) return Error{ErrorCode::invalid_argument, g_.path + ": output '" + o + "' is not computed by the graph"};
    }
    if (options_.fuse) fuse();
    index_readers();
    return std::move(g_);
  }

  // Output dims of `op` given its inputs' dims (shared with ModelGraph::shapes).
  static Result<Dims> output_dims(const GraphOp& op, const std::map<std::string, Dims>& dims, std::int64_t batch,
                                  const ModelGraph& g);

 private:
  Error fail(const std::string& what) const {
    const std::string where = node_ == nullptr ? std::string() : " (" + node_->op + " '" + node_->name + "')";
    return Error{ErrorCode::invalid_argument, model_.path + ": " + what + where};
  }

  Result<Dims> output_dims(const GraphOp& op, const std::map<std::string, Dims>& dims, std::int64_t batch) const {
    return output_dims(op, dims, batch, g_);
  }

  static Dims at_batch_one(Dims d) {
    if (!d.empty() && d[0] < 0) d[0] = 1;
    return d;
  }

  Status check_input() {
    if (model_.inputs.size() != 1) {
      return Error{ErrorCode::invalid_argument,
                   model_.path + ": the model has " + std::to_string(model_.inputs.size()) + " inputs; vigil feeds one"};
    }
    g_.input = model_.inputs[0].name;
    g_.input_dims = model_.inputs[0].dims;
    const Dims& d = g_.input_dims;
    if (d.empty() || std::any_of(d.begin() + 1, d.end(), [](std::int64_t v) { return v <= 0; })) {
      return Error{ErrorCode::invalid_argument,
                   model_.path + ": the input " + dims_string(d) + " needs fixed sizes after the batch axis"};
    }
    return {};
  }

  bool all_inputs_constant(const OnnxNode& node) const {
    return std::all_of(node.inputs.begin(), node.inputs.end(),
                       [&](const std::string& i) { return i.empty() || g_.constants.count(i) != 0; });
  }

  const OnnxTensor* constant(const OnnxNode& node, std::size_t i) const {
    if (i >= node.inputs.size() || node.inputs[i].empty()) return nullptr;
    const auto it = g_.constants.find(node.inputs[i]);
    return it == g_.constants.end() ? nullptr : &it->second;
  }

  // Resize (opset 11+): bilinear over height and width by constant scales (or sizes) of a
  // 4-D NCHW value; half_pixel, asymmetric or align_corners coordinates.
  Status translate_resize(const OnnxNode& node, GraphOp& op) {
    VIGIL_RETURN_IF_ERROR(need_computed(node, 0));
    const Dims& x = dims_of(node.inputs[0]);
    if (x.size() != 4) return fail("expects a 4-D input");
    const std::string mode = node.attr_string("mode", "nearest");
    if (mode != "linear") return fail("mode " + mode + " (only linear)");
    const std::string coords = node.attr_string("coordinate_transformation_mode", "half_pixel");
    if (coords == "half_pixel" || coords == "pytorch_half_pixel") {
      op.resize = ResizeMode::half_pixel;
    } else if (coords == "asymmetric") {
      op.resize = ResizeMode::asymmetric;
    } else if (coords == "align_corners") {
      op.resize = ResizeMode::align_corners;
    } else {
      return fail("coordinate_transformation_mode " + coords);
    }
    const OnnxTensor* scales = node.inputs.size() > 2 && !node.inputs[2].empty() ? constant(node, 2) : nullptr;
    const OnnxTensor* sizes = node.inputs.size() > 3 && !node.inputs[3].empty() ? constant(node, 3) : nullptr;
    if (scales != nullptr && scales->floats.size() == 4) {
      if (scales->floats[0] != 1 || scales->floats[1] != 1) return fail("scales the batch or channel axis");
      op.scales = {scales->floats[2], scales->floats[3]};
    } else if (sizes != nullptr && sizes->ints.size() == 4) {
      if (sizes->ints[1] != x[1] || sizes->ints[2] <= 0 || sizes->ints[3] <= 0) return fail("sizes change the channels");
      op.scales = {static_cast<float>(sizes->ints[2]) / static_cast<float>(x[2]), static_cast<float>(sizes->ints[3]) / static_cast<float>(x[3])};
    } else {
      return fail("needs constant scales or sizes of 4 values");
    }
    if (!(op.scales[0] > 0 && op.scales[1] > 0 && op.scales[0] <= 64 && op.scales[1] <= 64)) return fail("scales out of range");
    op.kind = OpKind::resize;
    op.inputs = {node.inputs[0]};
    return {};
  }

  Status need_computed(const OnnxNode& node, std::size_t i) const {
    if (i >= node.inputs.size() || node.inputs[i].empty()) return fail("input " + std::to_string(i) + " is missing");
    if (!dims_.count(node.inputs[i])) {
      if (g_.constants.count(node.inputs[i])) return fail("input '" + node.inputs[i] + "' is a constant here");
      return fail("input '" + node.inputs[i] + "' is not computed before this node");
    }
    return {};
  }

  const Dims& dims_of(const std::string& name) const { return dims_.at(name); }

  // A new constant, named after what it came from.
  std::string add_constant(const std::string& name, OnnxTensor tensor) {
    std::string unique = name;
    for (int n = 2; g_.constants.count(unique); ++n) unique = name + "#" + std::to_string(n);
    g_.constants.emplace(unique, std::move(tensor));
    return unique;
  }

  Result<GraphOp> translate(const OnnxNode& node);
  Status translate_conv(const OnnxNode& node, GraphOp& op);
  Status translate_pool(const OnnxNode& node, GraphOp& op);
  Status translate_fully_connected(const OnnxNode& node, GraphOp& op);
  Status translate_per_channel(const OnnxNode& node, GraphOp& op);
  Status translate_layout(const OnnxNode& node, GraphOp& op);
  Result<Activation> activation_of(const OnnxNode& node) const;
  Result<std::array<std::int64_t, 4>> window_pads(const OnnxNode& node, const Window& w, std::int64_t h, std::int64_t wd) const;
  Status fold(const OnnxNode& node);
  void fuse();
  void fuse_pads_into_convolutions();
  void fuse_into_convolutions();
  void fuse_activations();
  void remove(std::vector<bool>& removed);
  int only_reader(const std::string& value) const;
  void index_readers();

  OnnxModel model_;
  const ImportOptions& options_;
  ModelGraph g_;
  std::map<std::string, Dims> dims_;  // computed values at batch 1
  const OnnxNode* node_ = nullptr;
};

Result<Activation> Importer::activation_of(const OnnxNode& node) const {
  Activation a;
  if (node.op == "Relu") {
    a.kind = Activation::relu;
  } else if (node.op == "LeakyRelu") {
    a.kind = Activation::leaky_relu;
    a.alpha = node.attr_float("alpha", 0.01f);
  } else if (node.op == "Sigmoid") {
    a.kind = Activation::sigmoid;
  } else if (node.op == "Elu") {
    a.kind = Activation::elu;
    a.alpha = node.attr_float("alpha", 1.0f);
  } else if (node.op == "HardSwish") {
    a.kind = Activation::hardswish;
  } else if (node.op == "Clip") {
    const float inf = std::numeric_limits<float>::infinity();
    a.kind = Activation::clip;
    a.alpha = node.attr_float("min", -inf);
    a.beta = node.attr_float("max", inf);
    for (std::size_t i : {std::size_t{1}, std::size_t{2}}) {
      if (i >= node.inputs.size() || node.inputs[i].empty()) continue;
      const OnnxTensor* c = constant(node, i);
      if (c == nullptr || c->floats.size() != 1) return fail("Clip bounds must be scalar float constants");
      (i == 1 ? a.alpha : a.beta) = c->floats[0];
    }
  } else {
    return fail("operator " + node.op + " is not an activation");
  }
  return a;
}

Result<GraphOp> Importer::translate(const OnnxNode& node) {
  GraphOp op;
  op.op_type = node.op;
  op.name = node.name;
  op.output = node.outputs[0];
  const std::string& t = node.op;
  if (t == "Conv") {
    VIGIL_RETURN_IF_ERROR(translate_conv(node, op));
  } else if (t == "MaxPool" || t == "AveragePool" || t == "GlobalAveragePool") {
    VIGIL_RETURN_IF_ERROR(translate_pool(node, op));
  } else if (t == "Gemm" || t == "MatMul") {
    VIGIL_RETURN_IF_ERROR(translate_fully_connected(node, op));
  } else if (const auto binary = binary_of(t)) {
    if (node.inputs.size() != 2) return fail("expects 2 inputs");
    op.kind = OpKind::binary;
    op.binary = *binary;
    op.inputs = node.inputs;
    for (std::size_t i = 0; i < 2; ++i) {
      const OnnxTensor* c = constant(node, i);
      if (c != nullptr && !c->is_float()) return fail("integer constant in arithmetic");
      if (c == nullptr) VIGIL_RETURN_IF_ERROR(need_computed(node, i));
    }
  } else if (t == "Relu" || t == "LeakyRelu" || t == "Sigmoid" || t == "Elu" || t == "HardSwish" || t == "Clip") {
    VIGIL_RETURN_IF_ERROR(need_computed(node, 0));
    auto a = activation_of(node);
    if (!a.ok()) return a.error();
    op.kind = OpKind::activation;
    op.activation = *a;
    op.inputs = {node.inputs[0]};
  } else if (t == "BatchNormalization" || t == "PRelu") {
    VIGIL_RETURN_IF_ERROR(translate_per_channel(node, op));
  } else if (t == "Softmax") {
    VIGIL_RETURN_IF_ERROR(need_computed(node, 0));
    op.kind = OpKind::softmax;
    op.inputs = {node.inputs[0]};
    const auto rank = static_cast<std::int64_t>(dims_of(node.inputs[0]).size());
    op.axis = node.attr_int("axis", model_.opset >= 13 ? -1 : 1);
    if (op.axis < 0) op.axis += rank;
    if (op.axis < 0 || op.axis >= rank) return fail("axis out of range");
  } else if (t == "Resize") {
    VIGIL_RETURN_IF_ERROR(translate_resize(node, op));
  } else if (t == "Identity" || t == "Dropout") {
    VIGIL_RETURN_IF_ERROR(need_computed(node, 0));
    op.kind = OpKind::identity;
    op.inputs = {node.inputs[0]};
  } else if (t == "Pad" || t == "Transpose" || t == "Reshape" || t == "Flatten") {
    VIGIL_RETURN_IF_ERROR(translate_layout(node, op));
  } else {
    return fail("operator " + t + " is not supported by vigil's ONNX importer");
  }
  return op;
}

// pads [top, left, bottom, right] from `pads` / `auto_pad` for a window over (h, w).
Result<std::array<std::int64_t, 4>> Importer::window_pads(const OnnxNode& node, const Window& w, std::int64_t h,
                                                          std::int64_t wd) const {
  std::array<std::int64_t, 4> p{0, 0, 0, 0};
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") {
    const auto pads = node.attr_ints("pads");
    if (!pads.empty() && pads.size() != 4) return fail("expects 4 pads");
    if (!pads.empty()) p = {pads[0], pads[1], pads[2], pads[3]};
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const std::array<std::int64_t, 2> in{h, wd};
    for (int i = 0; i < 2; ++i) {
      const std::int64_t out = (in[i] + w.stride[i] - 1) / w.stride[i];
      const std::int64_t total = std::max<std::int64_t>(0, (out - 1) * w.stride[i] + w.dilation[i] * (w.kernel[i] - 1) + 1 - in[i]);
      const std::int64_t small = total / 2;
      p[i] = auto_pad == "SAME_UPPER" ? small : total - small;
      p[i + 2] = total - p[i];
    }
  } else if (auto_pad != "VALID") {
    return fail("auto_pad " + auto_pad);
  }
  if (std::any_of(p.begin(), p.end(), [](std::int64_t v) { return v < 0; })) return fail("negative padding");
  return p;
}

Status Importer::translate_conv(const OnnxNode& node, GraphOp& op) {
  VIGIL_RETURN_IF_ERROR(need_computed(node, 0));
  const Dims& x = dims_of(node.inputs[0]);
  const OnnxTensor* w = constant(node, 1);
  if (x.size() != 4) return fail("expects a 4-D NCHW input, got " + dims_string(x));
  if (w == nullptr || w->dims.size() != 4 || !w->is_float()) return fail("weights must be a 4-D float constant");
  const std::int64_t out_c = w->dims[0];
  op.kind = OpKind::conv;
  op.group = node.attr_int("group", 1);
  if (op.group <= 0 || x[1] % op.group != 0 || out_c % op.group != 0 || x[1] / op.group != w->dims[1]) {
    return fail("weights " + dims_string(w->dims) + " do not fit input " + dims_string(x) + " in " + std::to_string(op.group) + " groups");
  }
  op.window.kernel = {w->dims[2], w->dims[3]};
  op.window.stride = pair_of(node.attr_ints("strides"), 1);
  op.window.dilation = pair_of(node.attr_ints("dilations"), 1);
  auto pads = window_pads(node, op.window, x[2], x[3]);
  if (!pads.ok()) return pads.error();
  op.window.pads = *pads;
  std::string bias;
  if (const OnnxTensor* b = constant(node, 2); b != nullptr) {
    if (b->element_count() != out_c || !b->is_float()) return fail("bias does not have one value per output channel");
    bias = node.inputs[2];
  } else if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
    return fail("bias must be a constant");
  } else {
    OnnxTensor zero;
    zero.dims = {out_c};
    zero.floats.assign(static_cast<std::size_t>(out_c), 0.0f);
    bias = add_constant(node.inputs[1] + "#zero-bias", std::move(zero));
  }
  op.inputs = {node.inputs[0], node.inputs[1], bias};
  return {};
}

Status Importer::translate_pool(const OnnxNode& node, GraphOp& op) {
  VIGIL_RETURN_IF_ERROR(need_computed(node, 0));
  const Dims& x = dims_of(node.inputs[0]);
  if (x.size() != 4) return fail("expects a 4-D NCHW input, got " + dims_string(x));
  op.inputs = {node.inputs[0]};
  if (node.op == "GlobalAveragePool") {
    op.kind = OpKind::global_average_pool;
    return {};
  }
  op.kind = node.op == "MaxPool" ? OpKind::max_pool : OpKind::average_pool;
  op.window.kernel = pair_of(node.attr_ints("kernel_shape"), 0);
  if (op.window.kernel[0] <= 0 || op.window.kernel[1] <= 0) return fail("kernel_shape must have 2 positive values");
  op.window.stride = pair_of(node.attr_ints("strides"), 1);
  op.window.dilation = pair_of(node.attr_ints("dilations"), 1);
  auto pads = window_pads(node, op.window, x[2], x[3]);
  if (!pads.ok()) return pads.error();
  op.window.pads = *pads;
  op.window.count_include_pad = node.attr_int("count_include_pad", 0) != 0;
  if (node.attr_int("ceil_mode", 0) != 0) {
    // Grow the bottom and right padding until floor division gives the ceil size.
    Window floor = op.window;
    op.window.ceil_mode = true;
    for (int i = 0; i < 2; ++i) {
      const std::int64_t want = op.window.output(x[2 + static_cast<std::size_t>(i)], i);
      while (floor.output(x[2 + static_cast<std::size_t>(i)], i) < want) ++floor.pads[static_cast<std::size_t>(i) + 2];
    }
    op.window.pads = floor.pads;
    op.window.ceil_mode = false;
  }
  if (op.kind == OpKind::average_pool && op.window.count_include_pad &&
      std::any_of(op.window.pads.begin(), op.window.pads.end(), [](std::int64_t p) { return p > 0; })) {
    return fail("count_include_pad with padding");
  }
  if (op.window.output(x[2], 0) <= 0 || op.window.output(x[3], 1) <= 0) return fail("window larger than its input");
  return {};
}

// Gemm (alpha, beta, transB folded in) and MatMul by a constant: y = x W^T + b, W [N, K].
Status Importer::translate_fully_connected(const OnnxNode& node, GraphOp& op) {
  VIGIL_RETURN_IF_ERROR(need_computed(node, 0));
  const Dims& x = dims_of(node.inputs[0]);
  const OnnxTensor* b = constant(node, 1);
  if (b == nullptr || b->dims.size() != 2 || !b->is_float()) return fail("weights must be a 2-D float constant");
  const bool gemm = node.op == "Gemm";
  if (x.size() < 2 || (gemm && (node.attr_int("transA", 0) != 0 || x.size() != 2))) return fail("transposed or non-2-D A");
  const bool trans_b = gemm && node.attr_int("transB", 0) != 0;
  const std::int64_t k = trans_b ? b->dims[1] : b->dims[0];
  const std::int64_t n = trans_b ? b->dims[0] : b->dims[1];
  if (x.back() != k) return fail("weights " + dims_string(b->dims) + " do not fit input " + dims_string(x));
  const float alpha = gemm ? node.attr_float("alpha", 1.0f) : 1.0f;
  const float beta = gemm ? node.attr_float("beta", 1.0f) : 1.0f;
  OnnxTensor weights;
  weights.dims = {n, k};
  weights.floats.resize(static_cast<std::size_t>(n * k));
  for (std::int64_t o = 0; o < n; ++o) {
    for (std::int64_t i = 0; i < k; ++i) {
      weights.floats[static_cast<std::size_t>(o * k + i)] = alpha * b->floats[static_cast<std::size_t>(trans_b ? o * k + i : i * n + o)];
    }
  }
  OnnxTensor bias;
  bias.dims = {n};
  bias.floats.assign(static_cast<std::size_t>(n), 0.0f);
  if (const OnnxTensor* c = gemm ? constant(node, 2) : nullptr; c != nullptr) {
    if ((c->element_count() != n && c->element_count() != 1) || !c->is_float()) {
      return fail("bias " + dims_string(c->dims) + " is not one value per output");
    }
    for (std::size_t i = 0; i < bias.floats.size(); ++i) bias.floats[i] = beta * c->floats[c->floats.size() == 1 ? 0 : i];
  } else if (gemm && node.inputs.size() > 2 && !node.inputs[2].empty()) {
    return fail("bias must be a constant");
  }
  op.kind = OpKind::fully_connected;
  op.inputs = {node.inputs[0], add_constant(node.inputs[1] + "#fc", std::move(weights)),
               add_constant(node.inputs[1] + "#fc-bias", std::move(bias))};
  return {};
}

// BatchNormalization as a per-channel scale and shift; PRelu with one slope per channel.
Status Importer::translate_per_channel(const OnnxNode& node, GraphOp& op) {
  VIGIL_RETURN_IF_ERROR(need_computed(node, 0));
  const Dims& x = dims_of(node.inputs[0]);
  if (x.size() < 2) return fail("expects an input of rank 2 or more, got " + dims_string(x));
  const std::int64_t c = x[1];
  if (node.op == "PRelu") {
    const OnnxTensor* slope = constant(node, 1);
    if (slope == nullptr || !slope->is_float() || slope->element_count() != c) return fail("slope must be a constant with one value per channel");
    OnnxTensor s;
    s.dims = {c};
    s.floats = slope->floats;
    op.kind = OpKind::prelu;
    op.inputs = {node.inputs[0], add_constant(node.inputs[1] + "#slope", std::move(s))};
    return {};
  }
  const OnnxTensor* scale = constant(node, 1);
  const OnnxTensor* shift = constant(node, 2);
  const OnnxTensor* mean = constant(node, 3);
  const OnnxTensor* var = constant(node, 4);
  for (const OnnxTensor* t : {scale, shift, mean, var}) {
    if (t == nullptr || t->element_count() != c || !t->is_float()) return fail("statistics must be constants with one value per channel");
  }
  const float eps = node.attr_float("epsilon", 1e-5f);
  OnnxTensor a, b;
  a.dims = b.dims = {c};
  a.floats.resize(static_cast<std::size_t>(c));
  b.floats.resize(static_cast<std::size_t>(c));
  for (std::size_t i = 0; i < a.floats.size(); ++i) {
    a.floats[i] = scale->floats[i] / std::sqrt(var->floats[i] + eps);
    b.floats[i] = shift->floats[i] - mean->floats[i] * a.floats[i];
  }
  op.kind = OpKind::batch_norm;
  op.inputs = {node.inputs[0], add_constant(node.inputs[1] + "#bn-scale", std::move(a)),
               add_constant(node.inputs[2] + "#bn-shift", std::move(b))};
  return {};
}

// Pad, Transpose, Reshape and Flatten: what they do to the layout, from constants.
Status Importer::translate_layout(const OnnxNode& node, GraphOp& op) {
  VIGIL_RETURN_IF_ERROR(need_computed(node, 0));
  const Dims& x = dims_of(node.inputs[0]);
  op.inputs = {node.inputs[0]};
  if (node.op == "Transpose") {
    op.kind = OpKind::transpose;
    op.perm = node.attr_ints("perm");
    if (op.perm.empty()) {
      for (std::size_t i = x.size(); i-- > 0;) op.perm.push_back(static_cast<std::int64_t>(i));
    }
    Dims sorted = op.perm;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      if (sorted.size() != x.size() || sorted[i] != static_cast<std::int64_t>(i)) return fail("perm " + dims_string(op.perm) + " for " + dims_string(x));
    }
    return {};
  }
  if (node.op == "Flatten") {
    std::int64_t axis = node.attr_int("axis", 1);
    if (axis < 0) axis += static_cast<std::int64_t>(x.size());
    if (axis < 0 || axis > static_cast<std::int64_t>(x.size())) return fail("axis out of range");
    op.kind = OpKind::reshape;
    // Written so that it follows the batch: [batch, rest] for axis 1.
    if (axis == 0) op.shape = {1, -1};
    else if (axis == 1) op.shape = {0, -1};
    else op.shape = {-1, product(x, static_cast<std::size_t>(axis))};
    return {};
  }
  if (node.op == "Reshape") {
    const OnnxTensor* shape = constant(node, 1);
    if (shape == nullptr || shape->ints.empty()) return fail("the target shape must be an integer constant");
    op.kind = OpKind::reshape;
    op.shape = shape->ints;
    return {};
  }
  op.kind = OpKind::pad;
  if (node.attr_string("mode", "constant") != "constant") return fail("mode " + node.attr_string("mode", ""));
  op.pads = node.attr_ints("pads");
  if (const OnnxTensor* p = constant(node, 1); p != nullptr) {
    op.pads = p->ints;
  } else if (node.inputs.size() > 1 && !node.inputs[1].empty()) {
    return fail("pads must be a constant");
  }
  op.pad_value = node.attr_float("value", 0.0f);
  if (const OnnxTensor* v = constant(node, 2); v != nullptr && !v->floats.empty()) op.pad_value = v->floats[0];
  if (op.pads.size() != 2 * x.size()) return fail("expects " + std::to_string(2 * x.size()) + " pads");
  if (std::any_of(op.pads.begin(), op.pads.end(), [](std::int64_t p) { return p < 0; })) return fail("negative pads (cropping)");
  return {};
}

// A node of constants only: evaluated now, its output another constant.
Status Importer::fold(const OnnxNode& node) {
  const OnnxTensor* a = constant(node, 0);
  if (a == nullptr) return fail("no input");
  OnnxTensor out;
  const std::string& t = node.op;
  if (const auto binary = binary_of(t)) {
    const OnnxTensor* b = constant(node, 1);
    if (b == nullptr || !a->is_float() || !b->is_float() || !broadcasts(a->dims, b->dims)) return fail("cannot fold these constants");
    out.dims = broadcast(a->dims, b->dims);
    out.floats.resize(static_cast<std::size_t>(out.element_count()));
    for (std::size_t i = 0; i < out.floats.size(); ++i) {
      out.floats[i] = apply(*binary, a->floats[broadcast_index(i, out.dims, a->dims)], b->floats[broadcast_index(i, out.dims, b->dims)]);
    }
  } else if (t == "Identity" || t == "Dropout") {
    out = *a;
  } else if (t == "Reshape" || t == "Flatten" || t == "Unsqueeze" || t == "Squeeze") {
    out = *a;
    if (t == "Reshape") {
      const OnnxTensor* shape = constant(node, 1);
      if (shape == nullptr) return fail("the target shape must be a constant");
      auto target = reshape_target(shape->ints, a->dims, 1, g_.path);
      if (!target.ok()) return target.error();
      out.dims = *target;
    } else if (t == "Flatten") {
      std::int64_t axis = node.attr_int("axis", 1);
      if (axis < 0) axis += static_cast<std::int64_t>(a->dims.size());
      out.dims = {product(a->dims, 0, static_cast<std::size_t>(axis)), product(a->dims, static_cast<std::size_t>(axis))};
    } else {
      Dims axes = node.attr_ints("axes");
      if (const OnnxTensor* c = constant(node, 1); c != nullptr) axes = c->ints;
      const auto rank = static_cast<std::int64_t>(a->dims.size() + (t == "Unsqueeze" ? axes.size() : 0));
      for (std::int64_t& v : axes) v = v < 0 ? v + rank : v;
      std::sort(axes.begin(), axes.end());
      if (t == "Unsqueeze") {
        for (std::int64_t v : axes) out.dims.insert(out.dims.begin() + std::min<std::int64_t>(v, static_cast<std::int64_t>(out.dims.size())), 1);
      } else {
        Dims kept;
        for (std::size_t i = 0; i < a->dims.size(); ++i) {
          const bool squeezed = axes.empty() ? a->dims[i] == 1 : std::binary_search(axes.begin(), axes.end(), static_cast<std::int64_t>(i));
          if (!squeezed) kept.push_back(a->dims[i]);
        }
        out.dims = kept;
      }
    }
  } else if (t == "Concat") {
    std::int64_t axis = node.attr_int("axis", 0);
    if (axis < 0) axis += static_cast<std::int64_t>(a->dims.size());
    if (axis != 0 || a->dims.size() != 1) return fail("folds only 1-D concatenations of constants");
    out.dims = {0};
    for (std::size_t i = 0; i < node.inputs.size(); ++i) {
      const OnnxTensor* c = constant(node, i);
      if (c == nullptr || c->dims.size() != 1 || c->is_float() != a->is_float()) return fail("cannot fold these constants");
      out.floats.insert(out.floats.end(), c->floats.begin(), c->floats.end());
      out.ints.insert(out.ints.end(), c->ints.begin(), c->ints.end());
      out.dims[0] += c->dims[0];
    }
  } else if (t == "Transpose" && a->dims.size() == 2 && a->is_float()) {
    out.dims = {a->dims[1], a->dims[0]};
    out.floats.resize(a->floats.size());
    for (std::int64_t r = 0; r < a->dims[0]; ++r) {
      for (std::int64_t c = 0; c < a->dims[1]; ++c) out.floats[static_cast<std::size_t>(c * a->dims[0] + r)] = a->floats[static_cast<std::size_t>(r * a->dims[1] + c)];
    }
  } else {
    return fail("operator " + t + " on constants is not folded by vigil's ONNX importer");
  }
  g_.constants[node.outputs[0]] = std::move(out);
  return {};
}

int Importer::only_reader(const std::string& value) const {
  if (std::find(g_.outputs.begin(), g_.outputs.end(), value) != g_.outputs.end()) return -1;
  int found = -1;
  for (std::size_t i = 0; i < g_.ops.size(); ++i) {
    for (const std::string& in : g_.ops[i].inputs) {
      if (in != value) continue;
      if (found >= 0 && found != static_cast<int>(i)) return -1;
      found = static_cast<int>(i);
    }
  }
  return found;
}

void Importer::remove(std::vector<bool>& removed) {
  std::vector<GraphOp> kept;
  for (std::size_t i = 0; i < g_.ops.size(); ++i) {
    if (!removed[i]) kept.push_back(std::move(g_.ops[i]));
  }
  g_.ops = std::move(kept);
}

void Importer::fuse() {
  fuse_pads_into_convolutions();
  fuse_into_convolutions();
  fuse_activations();
}

// A zero Pad of height and width only, read only by a convolution, is that convolution's padding.
void Importer::fuse_pads_into_convolutions() {
  std::vector<bool> removed(g_.ops.size(), false);
  for (std::size_t i = 0; i < g_.ops.size(); ++i) {
    const GraphOp& pad = g_.ops[i];
    if (pad.kind != OpKind::pad || pad.pad_value != 0.0f || pad.pads.size() != 8) continue;
    const Dims& p = pad.pads;
    if (p[0] || p[1] || p[4] || p[5]) continue;
    const int reader = only_reader(pad.output);
    if (reader < 0 || g_.ops[static_cast<std::size_t>(reader)].kind != OpKind::conv) continue;
    GraphOp& conv = g_.ops[static_cast<std::size_t>(reader)];
    if (conv.inputs[0] != pad.output) continue;
    conv.window.pads[0] += p[2];
    conv.window.pads[1] += p[3];
    conv.window.pads[2] += p[6];
    conv.window.pads[3] += p[7];
    conv.inputs[0] = pad.inputs[0];
    removed[i] = true;
  }
  remove(removed);
}

// BatchNormalization, or an Add of one value per output channel, read only after a
// convolution: into its weights and bias.
void Importer::fuse_into_convolutions() {
  std::vector<bool> removed(g_.ops.size(), false);
  for (std::size_t i = 0; i < g_.ops.size(); ++i) {
    GraphOp& conv = g_.ops[i];
    if (conv.kind != OpKind::conv || removed[i]) continue;
    const int at = only_reader(conv.output);
    if (at < 0) continue;
    GraphOp& next = g_.ops[static_cast<std::size_t>(at)];
    const OnnxTensor& w = g_.constants.at(conv.inputs[1]);
    const std::int64_t out_c = w.dims[0];
    OnnxTensor weights = w, bias = g_.constants.at(conv.inputs[2]);
    if (next.kind == OpKind::batch_norm) {
      const OnnxTensor& scale = g_.constants.at(next.inputs[1]);
      const OnnxTensor& shift = g_.constants.at(next.inputs[2]);
      const auto per_out = static_cast<std::size_t>(w.element_count() / out_c);
      for (std::size_t o = 0; o < static_cast<std::size_t>(out_c); ++o) {
        for (std::size_t k = 0; k < per_out; ++k) weights.floats[o * per_out + k] *= scale.floats[o];
        bias.floats[o] = bias.floats[o] * scale.floats[o] + shift.floats[o];
      }
      conv.inputs[1] = add_constant(conv.inputs[1] + "#bn", std::move(weights));
    } else if (next.kind == OpKind::binary && next.binary == BinaryOp::add) {
      const std::string& other = next.inputs[0] == conv.output ? next.inputs[1] : next.inputs[0];
      const OnnxTensor* c = g_.constant(other);
      if (c == nullptr || c->element_count() != out_c) continue;
      Dims d = c->dims;
      d.insert(d.begin(), 4 - std::min<std::size_t>(4, d.size()), 1);
      if (d.size() != 4 || d[1] != out_c) continue;  // one value per channel of NCHW
      for (std::size_t o = 0; o < static_cast<std::size_t>(out_c); ++o) bias.floats[o] += c->floats[o];
    } else {
      continue;
    }
    conv.inputs[2] = add_constant(conv.inputs[2] + "#fused", std::move(bias));
    conv.output = next.output;
    removed[static_cast<std::size_t>(at)] = true;
  }
  remove(removed);
}

// An activation read only after a convolution, a fully connected layer or an elementwise op
// runs inside it.
void Importer::fuse_activations() {
  std::vector<bool> removed(g_.ops.size(), false);
  for (std::size_t i = 0; i < g_.ops.size(); ++i) {
    GraphOp& op = g_.ops[i];
    const bool fusable = op.kind == OpKind::conv || op.kind == OpKind::fully_connected || op.kind == OpKind::binary;
    if (!fusable || op.activation.kind != Activation::none) continue;
    const int at = only_reader(op.output);
    if (at < 0 || g_.ops[static_cast<std::size_t>(at)].kind != OpKind::activation) continue;
    op.activation = g_.ops[static_cast<std::size_t>(at)].activation;
    op.output = g_.ops[static_cast<std::size_t>(at)].output;
    removed[static_cast<std::size_t>(at)] = true;
  }
  remove(removed);
}

void Importer::index_readers() {
  for (std::size_t i = 0; i < g_.ops.size(); ++i) {
    for (const std::string& in : g_.ops[i].inputs) {
      if (g_.constants.count(in)) continue;
      g_.last_use[in] = static_cast<int>(i);
      ++g_.readers[in];
    }
  }
  for (const std::string& o : g_.outputs) {
    g_.last_use[o] = ModelGraph::kOutput;
    ++g_.readers[o];
  }
}

Result<Dims> Importer::output_dims(const GraphOp& op, const std::map<std::string, Dims>& dims, std::int64_t batch,
                                   const ModelGraph& g) {
  const auto in = [&](std::size_t i) -> Dims {
    if (const OnnxTensor* c = g.constant(op.inputs[i])) return c->dims;
    const auto it = dims.find(op.inputs[i]);
    return it == dims.end() ? Dims{} : it->second;
  };
  const Dims x = in(0);
  const std::string where = g.path + ": " + op.describe();
  switch (op.kind) {
    case OpKind::conv: {
      const std::int64_t oh = op.window.output(x[2], 0), ow = op.window.output(x[3], 1);
      if (oh <= 0 || ow <= 0) return Error{ErrorCode::invalid_argument, where + ": kernel larger than its input"};
      return Dims{x[0], in(1)[0], oh, ow};
    }
    case OpKind::max_pool:
    case OpKind::average_pool: return Dims{x[0], x[1], op.window.output(x[2], 0), op.window.output(x[3], 1)};
    case OpKind::global_average_pool: return Dims{x[0], x[1], 1, 1};
    case OpKind::fully_connected: {
      Dims out = x;
      out.back() = in(1)[0];
      return out;
    }
    case OpKind::binary: {
      const Dims y = in(1);
      if (!broadcasts(x, y)) return Error{ErrorCode::invalid_argument, where + ": " + dims_string(x) + " and " + dims_string(y) + " do not broadcast"};
      return broadcast(x, y);
    }
    case OpKind::pad: {
      Dims out = x;
      for (std::size_t i = 0; i < out.size(); ++i) out[i] += op.pads[i] + op.pads[i + out.size()];
      return out;
    }
    case OpKind::transpose: {
      Dims out;
      for (const std::int64_t p : op.perm) out.push_back(x[static_cast<std::size_t>(p)]);
      return out;
    }
    case OpKind::reshape: return reshape_target(op.shape, x, batch, where);
    case OpKind::resize:
      return Dims{x[0], x[1], static_cast<std::int64_t>(std::floor(static_cast<double>(x[2]) * op.scales[0])),
                  static_cast<std::int64_t>(std::floor(static_cast<double>(x[3]) * op.scales[1]))};
    case OpKind::activation:
    case OpKind::batch_norm:
    case OpKind::prelu:
    case OpKind::softmax:
    case OpKind::identity: return x;
  }
  return x;
}

}  // namespace

std::string_view to_string(OpKind kind) {
  switch (kind) {
    case OpKind::conv: return "conv";
    case OpKind::fully_connected: return "fully_connected";
    case OpKind::binary: return "binary";
    case OpKind::activation: return "activation";
    case OpKind::max_pool: return "max_pool";
    case OpKind::average_pool: return "average_pool";
    case OpKind::global_average_pool: return "global_average_pool";
    case OpKind::batch_norm: return "batch_norm";
    case OpKind::pad: return "pad";
    case OpKind::transpose: return "transpose";
    case OpKind::reshape: return "reshape";
    case OpKind::prelu: return "prelu";
    case OpKind::softmax: return "softmax";
    case OpKind::resize: return "resize";
    case OpKind::identity: return "identity";
  }
  return "unknown";
}

std::int64_t Window::output(std::int64_t in, int i) const {
  const auto a = static_cast<std::size_t>(i);
  const std::int64_t span = in + pads[a] + pads[a + 2] - dilation[a] * (kernel[a] - 1) - 1;
  if (span < 0) return 0;
  return (ceil_mode ? (span + stride[a] - 1) / stride[a] : span / stride[a]) + 1;
}

std::string GraphOp::describe() const { return op_type + " '" + name + "'"; }

const OnnxTensor* ModelGraph::constant(const std::string& name) const {
  const auto it = constants.find(name);
  return it == constants.end() ? nullptr : &it->second;
}

std::int64_t ModelGraph::input_item_size() const { return product(input_dims, 1); }

Result<std::map<std::string, Dims>> ModelGraph::shapes(std::int64_t batch) const {
  std::map<std::string, Dims> dims;
  Dims in = input_dims;
  in[0] = batch;
  dims[input] = in;
  for (const GraphOp& op : ops) {
    auto out = Importer::output_dims(op, dims, batch, *this);
    if (!out.ok()) return out.error();
    dims[op.output] = std::move(out).value();
  }
  return dims;
}

std::int64_t product(const Dims& dims, std::size_t from, std::size_t to) {
  const auto first = dims.begin() + static_cast<std::ptrdiff_t>(std::min(from, dims.size()));
  const auto last = dims.begin() + static_cast<std::ptrdiff_t>(std::min(to, dims.size()));
  return std::accumulate(first, last, std::int64_t{1}, std::multiplies<>());
}

Result<ModelGraph> import_onnx_model(const std::string& path, const ImportOptions& options) {
  auto model = read_onnx_model(path);
  if (!model.ok()) return model.error();
  return Importer(std::move(model).value(), options).run();
}

}  // namespace vigil
