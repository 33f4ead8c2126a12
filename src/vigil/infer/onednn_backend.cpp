// oneDNN backend: the ONNX graph lowered into a sequence of oneDNN primitives.
//
// Every value is a oneDNN memory descriptor over the ONNX (logical) dims: convolutions choose
// their own layouts (channels-last on AVX-512), a Transpose only permutes a descriptor's
// strides, a Reshape reinterprets dense data (a blocked or permuted value is reordered first),
// and an activation that is the only consumer of a convolution or an elementwise operation
// runs as its post-op. Buffers are reused once their last reader has run, so the working set
// of a small model stays in cache. Graph inputs and outputs are float32 in ONNX order; with
// bf16 precision the values in between are bfloat16 (weights converted at load, accumulation
// in float32), on CPUs with AVX512_BF16.
//
// Batches are run in chunks of at most max_chunk items (measured at load unless given, as for
// XNNPACK: BlazeFace at 256 runs fastest image by image). One plan per chunk size, made on first use: primitives, buffers and the argument arrays are
// fixed, so a steady-state call allocates nothing (scratchpads are vigil's). Debian's oneDNN
// threads with OpenMP, and a primitive keeps the thread count it was created with: plans are
// made, and calls run, with the calling thread's OpenMP count set to the backend's threads,
// so workers with one intra-op thread each never start an OpenMP team.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <oneapi/dnnl/dnnl.hpp>
#include <set>

#include "vigil/infer/backend.h"
#include "vigil/infer/backend_threads.h"
#include "vigil/infer/onnx_model.h"

namespace vigil {

namespace {

using dnnl::memory;
using Dims = memory::dims;
using DataType = memory::data_type;
using Tag = memory::format_tag;

std::atomic<int> g_onednn_threads{1};

constexpr int kInputBuffer = -1;  // the caller's input tensor
// Buffers -2, -3, ... are the caller's output tensors (output i is -2 - i).
int output_buffer(std::size_t i) { return -2 - static_cast<int>(i); }

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

std::int64_t product(const Dims& dims) {
  return std::accumulate(dims.begin(), dims.end(), std::int64_t{1}, std::multiplies<>());
}

Dims to_dims(const std::vector<std::int64_t>& v) { return Dims(v.begin(), v.end()); }

// Plain row-major descriptor.
memory::desc plain_desc(const Dims& dims, DataType type) {
  Dims strides(dims.size(), 1);
  for (std::size_t i = dims.size(); i-- > 1;) strides[i - 1] = strides[i] * dims[i];
  return memory::desc(dims, type, strides);
}

bool is_strided(const memory::desc& md) {
  return md.data.format_kind == dnnl_blocked && md.data.format_desc.blocking.inner_nblks == 0;
}

bool is_row_major(const memory::desc& md) { return is_strided(md) && md == plain_desc(md.dims(), md.data_type()); }

struct Value {
  memory::desc md;
  int buffer = kInputBuffer;
};

// A memory argument of a step: a descriptor over a buffer (or an external tensor).
struct MemRef {
  memory::desc md;
  int buffer = 0;
};

struct Step {
  dnnl::primitive primitive;              // empty: a fill
  std::vector<std::pair<int, int>> args;  // (DNNL_ARG_*, memref)
  std::vector<dnnl_exec_arg_t> exec;      // bound after the buffers exist
  // A fill: `bytes` of the memref's buffer set to a repeated pattern.
  int fill_ref = -1;
  std::uint32_t fill_pattern = 0;
  std::size_t fill_element = 4;
};

// Converted weights, shared by the plans of one backend (keyed by name and layout).
class WeightCache {
 public:
  memory get(const std::string& key, const memory::desc& wanted, const memory::desc& source_md, const float* data) {
    for (auto& [k, m] : entries_) {
      if (k == key && m.get_desc() == wanted) return m;
    }
    memory source(source_md, cpu_engine(), const_cast<float*>(data));
    memory converted(wanted, cpu_engine());
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(source, converted).execute(stream, source, converted);
    stream.wait();
    entries_.emplace_back(key, converted);
    return converted;
  }

 private:
  std::vector<std::pair<std::string, memory>> entries_;
};

struct Plan {
  std::int64_t batch = 0;
  std::vector<MemRef> refs;
  std::vector<Step> steps;
  std::vector<std::size_t> buffer_bytes;
  std::vector<std::vector<std::uint8_t>> buffers;
  std::vector<memory> memories;  // [ref]
  std::vector<int> external_refs;  // refs over the caller's tensors
  std::vector<std::int64_t> output_sizes;
  std::vector<Dims> output_dims;
  std::size_t scratch_bytes = 0;
  std::vector<std::uint8_t> scratch;
  memory scratch_memory;
  std::unique_ptr<dnnl::stream> stream;
  std::vector<memory> constants;  // kept alive for the primitives that read them
};

// One ONNX graph lowered at one batch size.
class Lowering {
 public:
  Lowering(const OnnxModel& model, std::int64_t batch, const std::vector<std::string>& outputs, DataType compute,
           WeightCache& weights, Plan& plan)
      : model_(model), batch_(batch), outputs_(outputs), compute_(compute), weights_(weights), plan_(plan) {}

  Status build() {
    plan_.batch = batch_;
    for (std::size_t i = 0; i < model_.nodes.size(); ++i) {
      for (const auto& name : model_.nodes[i].inputs) {
        last_use_[name] = static_cast<int>(i);
        consumers_[name].push_back(static_cast<int>(i));
      }
    }
    for (const auto& o : outputs_) last_use_[o] = std::numeric_limits<int>::max();
    Dims in_dims = to_dims(model_.inputs[0].dims);
    in_dims[0] = batch_;
    Value input{plain_desc(in_dims, DataType::f32), kInputBuffer};
    if (compute_ != DataType::f32) {
      Value converted = allocate(model_.inputs[0].name, plain_desc(in_dims, compute_));
      VIGIL_RETURN_IF_ERROR(add_reorder(input, converted));
      input = converted;
    }
    values_[model_.inputs[0].name] = input;
    skipped_.assign(model_.nodes.size(), false);
    try {
      for (std::size_t i = 0; i < model_.nodes.size(); ++i) {
        index_ = static_cast<int>(i);
        node_ = &model_.nodes[i];
        if (!skipped_[i]) VIGIL_RETURN_IF_ERROR(lower(*node_));
        release_after(index_);
      }
      node_ = nullptr;
      for (std::size_t i = 0; i < outputs_.size(); ++i) {
        const auto it = values_.find(outputs_[i]);
        if (it == values_.end()) {
          return Error{ErrorCode::invalid_argument, model_.path + ": output '" + outputs_[i] + "' is not computed by the graph"};
        }
        const Dims dims = it->second.md.dims();
        Value out{plain_desc(dims, DataType::f32), output_buffer(i)};
        VIGIL_RETURN_IF_ERROR(add_reorder(it->second, out));
        plan_.output_dims.push_back(dims);
      }
    } catch (const dnnl::error& e) {
      return fail(std::string("rejected by oneDNN: ") + e.what());
    }
    plan_.buffer_bytes.resize(buffers_.size());
    for (std::size_t b = 0; b < buffers_.size(); ++b) plan_.buffer_bytes[b] = buffers_[b].bytes;
    return {};
  }

 private:
  struct BufferState {
    std::size_t bytes = 0;
    int last_use = -1;
    bool free = false;
  };

  Error fail(const std::string& what) const {
    std::string where = node_ == nullptr ? std::string() : " (" + node_->op + " '" + node_->name + "')";
    return Error{ErrorCode::invalid_argument, model_.path + ": onednn: " + what + where};
  }

  int last_use(const std::string& name) const {
    const auto it = last_use_.find(name);
    return it == last_use_.end() ? index_ : std::max(index_, it->second);
  }

  // A buffer for a new value named `name` (reusing one whose readers have all run).
  Value allocate(const std::string& name, const memory::desc& md) {
    const std::size_t bytes = md.get_size();
    int chosen = -1;
    for (std::size_t b = 0; b < buffers_.size(); ++b) {
      if (!buffers_[b].free) continue;
      // Prefer a buffer already large enough, the smallest such.
      if (chosen < 0 || (buffers_[b].bytes >= bytes && (buffers_[static_cast<std::size_t>(chosen)].bytes < bytes ||
                                                         buffers_[b].bytes < buffers_[static_cast<std::size_t>(chosen)].bytes))) {
        chosen = static_cast<int>(b);
      }
    }
    if (chosen < 0) {
      buffers_.push_back({});
      chosen = static_cast<int>(buffers_.size() - 1);
    }
    BufferState& s = buffers_[static_cast<std::size_t>(chosen)];
    s.free = false;
    s.bytes = std::max(s.bytes, bytes);
    s.last_use = last_use(name);
    return Value{md, chosen};
  }

  // `name` reads the same buffer as `v` (a relabelled value): the buffer lives as long as it.
  void share(const std::string& name, const Value& v) {
    if (v.buffer >= 0) {
      BufferState& s = buffers_[static_cast<std::size_t>(v.buffer)];
      s.last_use = std::max(s.last_use, last_use(name));
    }
    values_[name] = v;
  }

  void release_after(int index) {
    for (auto& b : buffers_) {
      if (!b.free && b.last_use <= index) b.free = true;
    }
  }

  int ref(const memory::desc& md, int buffer) {
    plan_.refs.push_back({md, buffer});
    return static_cast<int>(plan_.refs.size() - 1);
  }

  dnnl::primitive_attr attr(const dnnl::post_ops& ops = dnnl::post_ops()) const {
    dnnl::primitive_attr a;
    a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    a.set_post_ops(ops);
    return a;
  }

  template <typename Primitive, typename PrimitiveDesc>
  void add_step(const PrimitiveDesc& pd, std::vector<std::pair<int, int>> args) {
    plan_.scratch_bytes = std::max(plan_.scratch_bytes, pd.scratchpad_desc().get_size());
    Step step;
    step.primitive = Primitive(pd);
    step.args = std::move(args);
    plan_.steps.push_back(std::move(step));
  }

  Status add_reorder(const Value& from, const Value& to) {
    dnnl::reorder::primitive_desc pd(cpu_engine(), from.md, cpu_engine(), to.md, attr());
    Step step;
    step.primitive = dnnl::reorder(pd);
    plan_.scratch_bytes = std::max(plan_.scratch_bytes, pd.scratchpad_desc().get_size());
    step.args = {{DNNL_ARG_FROM, ref(from.md, from.buffer)}, {DNNL_ARG_TO, ref(to.md, to.buffer)}};
    plan_.steps.push_back(std::move(step));
    return {};
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

  bool is_output(const std::string& name) const { return std::find(outputs_.begin(), outputs_.end(), name) != outputs_.end(); }

  // The activation that is the only reader of `name`, to run as a post-op (nullptr if none).
  const OnnxNode* fusable_activation(const std::string& name) const {
    if (is_output(name)) return nullptr;
    const auto it = consumers_.find(name);
    if (it == consumers_.end() || it->second.size() != 1) return nullptr;
    const OnnxNode& next = model_.nodes[static_cast<std::size_t>(it->second[0])];
    auto alg = activation(next);
    return alg.ok() ? &next : nullptr;
  }

  struct Activation {
    dnnl::algorithm alg;
    float alpha = 0, beta = 0;
  };

  Result<Activation> activation(const OnnxNode& node) const {
    if (node.op == "Relu") return Activation{dnnl::algorithm::eltwise_relu, 0.0f, 0.0f};
    if (node.op == "LeakyRelu") return Activation{dnnl::algorithm::eltwise_relu, node.attr_float("alpha", 0.01f), 0.0f};
    if (node.op == "Sigmoid") return Activation{dnnl::algorithm::eltwise_logistic, 0.0f, 0.0f};
    if (node.op == "Elu") return Activation{dnnl::algorithm::eltwise_elu, node.attr_float("alpha", 1.0f), 0.0f};
    if (node.op == "HardSwish") return Activation{dnnl::algorithm::eltwise_hardswish, 0.0f, 0.0f};
    if (node.op == "Clip") {
      const float inf = std::numeric_limits<float>::infinity();
      float lo = node.attr_float("min", -inf), hi = node.attr_float("max", inf);
      if (const OnnxTensor* c = constant(node, 1); c != nullptr && !c->floats.empty()) lo = c->floats[0];
      if (const OnnxTensor* c = constant(node, 2); c != nullptr && !c->floats.empty()) hi = c->floats[0];
      if ((node.inputs.size() > 1 && !node.inputs[1].empty() && constant(node, 1) == nullptr) ||
          (node.inputs.size() > 2 && !node.inputs[2].empty() && constant(node, 2) == nullptr)) {
        return fail("Clip bounds must be constants");
      }
      return Activation{dnnl::algorithm::eltwise_clip, lo, hi};
    }
    return fail("not an activation");
  }

  // Post-ops for a node whose output may be consumed by a fusable activation; returns the
  // name the node's result is known by (the activation's output when fused).
  std::string fuse_activation(const std::string& output, dnnl::post_ops& ops) {
    const OnnxNode* next = fusable_activation(output);
    if (next == nullptr) return output;
    auto a = activation(*next);
    ops.append_eltwise(1.0f, a->alg, a->alpha, a->beta);
    skipped_[static_cast<std::size_t>(&*next - model_.nodes.data())] = true;
    return next->outputs.at(0);
  }

  // A float constant as a memory of `dims` (broadcastable) in `type`.
  memory constant_memory(const OnnxTensor& c, const Dims& dims, DataType type) {
    memory f32(plain_desc(dims, DataType::f32), cpu_engine());
    std::memcpy(f32.get_data_handle(), c.floats.data(), c.floats.size() * sizeof(float));
    if (type == DataType::f32) return f32;
    memory converted(plain_desc(dims, type), cpu_engine());
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(f32, converted).execute(stream, f32, converted);
    stream.wait();
    return converted;
  }

  Status lower(const OnnxNode& node) {
    const std::string& op = node.op;
    if (op == "Conv") return conv(node);
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Max" || op == "Min") return binary(node);
    if (op == "Relu" || op == "Sigmoid" || op == "HardSwish" || op == "LeakyRelu" || op == "Elu" || op == "Clip") {
      return eltwise(node);
    }
    if (op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool") return pool(node);
    if (op == "Pad") return pad(node);
    if (op == "Transpose") return transpose(node);
    if (op == "Reshape" || op == "Flatten") return reshape(node);
    if (op == "Identity") {
      auto x = input(node, 0);
      if (!x.ok()) return x.error();
      share(node.outputs.at(0), *x);
      return {};
    }
    if (op == "Gemm" || op == "MatMul") return gemm(node);
    return fail("operator " + op + " is not supported");
  }

  // A 4-D value a convolution or pooling reads: strided, not blocked (any strides are fine).
  Result<Value> spatial_input(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    if (x->md.dims().size() != 4) return fail("expects a 4-D NCHW input, got " + dims_string(x->md.dims()));
    return x;
  }

  static std::array<std::int64_t, 2> pair(const std::vector<std::int64_t>& v, std::int64_t fallback) {
    return v.size() == 2 ? std::array<std::int64_t, 2>{v[0], v[1]} : std::array<std::int64_t, 2>{fallback, fallback};
  }

  // Explicit or auto_pad padding as {top, left, bottom, right}.
  Result<std::array<std::int64_t, 4>> window_pads(const OnnxNode& node, std::int64_t h, std::int64_t w,
                                                  std::array<std::int64_t, 2> kernel, std::array<std::int64_t, 2> stride,
                                                  std::array<std::int64_t, 2> dilation) const {
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

  // For a convolution output read only by an Add: that Add and its other operand, when the
  // operand is computed already, has the convolution's dims and type, lives in vigil's own
  // buffer (not the one the convolution reads) and nothing reads that buffer after the Add.
  std::optional<std::pair<const OnnxNode*, Value>> residual_operand(const std::string& output, const Dims& dims, int src_buffer) const {
    if (is_output(output)) return std::nullopt;
    const auto readers = consumers_.find(output);
    if (readers == consumers_.end() || readers->second.size() != 1) return std::nullopt;
    const int at = readers->second[0];
    const OnnxNode& add = model_.nodes[static_cast<std::size_t>(at)];
    if (add.op != "Add" || add.inputs.size() != 2 || add.inputs[0] == add.inputs[1] || is_output(add.outputs.at(0))) return std::nullopt;
    const std::string& other = add.inputs[0] == output ? add.inputs[1] : add.inputs[0];
    const auto it = values_.find(other);
    if (it == values_.end() || it->second.buffer < 0 || it->second.buffer == src_buffer) return std::nullopt;
    const Value& v = it->second;
    if (v.md.dims() != dims || v.md.data_type() != compute_ || !is_strided(v.md)) return std::nullopt;
    if (buffers_[static_cast<std::size_t>(v.buffer)].last_use > at) return std::nullopt;
    return std::make_pair(&add, v);
  }

  Status conv(const OnnxNode& node) {
    auto x = spatial_input(node);
    if (!x.ok()) return x.error();
    const OnnxTensor* w = constant(node, 1);
    if (w == nullptr || w->dims.size() != 4 || !w->is_float()) return fail("weights must be a 4-D float constant");
    const Dims xd = x->md.dims();
    const std::int64_t c = xd[1], h = xd[2], wd = xd[3];
    const std::int64_t out_c = w->dims[0], group_in = w->dims[1], kh = w->dims[2], kw = w->dims[3];
    const std::int64_t group = node.attr_int("group", 1);
    if (group <= 0 || c % group != 0 || out_c % group != 0 || c / group != group_in) {
      return fail("weights " + dims_string(w->dims) + " do not fit input " + dims_string(xd) + " in " + std::to_string(group) +
                  " groups");
    }
    const auto stride = pair(node.attr_ints("strides"), 1);
    const auto dilation = pair(node.attr_ints("dilations"), 1);
    auto p = window_pads(node, h, wd, {kh, kw}, stride, dilation);
    if (!p.ok()) return p.error();
    auto [pt, pl, pb, pr] = *p;
    // A zero Pad of height and width read only by this convolution is its padding.
    if (const auto folded = folded_pads_.find(node.inputs[0]); folded != folded_pads_.end()) {
      pt += folded->second[0];
      pl += folded->second[1];
      pb += folded->second[2];
      pr += folded->second[3];
    }
    const std::int64_t oh = (h + pt + pb - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
    const std::int64_t ow = (wd + pl + pr - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
    if (oh <= 0 || ow <= 0) return fail("kernel larger than its input");

    std::vector<float> bias(static_cast<std::size_t>(out_c), 0.0f);
    if (const OnnxTensor* b = constant(node, 2); b != nullptr) {
      if (b->element_count() != out_c || !b->is_float()) return fail("bias does not have one value per output channel");
      bias = b->floats;
    } else if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
      return fail("bias must be a constant");
    }
    const Dims weight_dims = group > 1 ? Dims{group, out_c / group, group_in, kh, kw} : Dims{out_c, group_in, kh, kw};
    const memory::desc weights_any(weight_dims, compute_, Tag::any);
    const memory::desc bias_md({out_c}, DataType::f32, Tag::a);
    const memory::desc dst_any({xd[0], out_c, oh, ow}, compute_, Tag::any);
    const Dims out_dims{xd[0], out_c, oh, ow};
    const auto make_desc = [&](const memory::desc& dst) {
      return dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, x->md,
                                             weights_any, bias_md, dst, {stride[0], stride[1]},
                                             {dilation[0] - 1, dilation[1] - 1}, {pt, pl}, {pb, pr});
    };
    // A residual Add whose other operand is not read after it: the convolution accumulates
    // into that operand's buffer (a sum post-op) instead of a separate pass over both.
    std::optional<dnnl::convolution_forward::primitive_desc> pd;
    std::string result_name;
    Value out;
    if (const auto residual = residual_operand(node.outputs.at(0), out_dims, x->buffer); residual) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);
      const OnnxNode& add = *residual->first;
      const std::string name = fuse_activation(add.outputs.at(0), ops);
      try {
        pd.emplace(make_desc(residual->second.md), attr(ops), cpu_engine());
        skipped_[static_cast<std::size_t>(&add - model_.nodes.data())] = true;
        result_name = name;
        out = residual->second;
        share(result_name, out);
      } catch (const dnnl::error&) {
        // Not offered for this layout: the Add runs on its own (and its activation with it).
        if (name != add.outputs.at(0)) skipped_[static_cast<std::size_t>(fusable_activation(add.outputs.at(0)) - model_.nodes.data())] = false;
        pd.reset();
      }
    }
    if (!pd) {
      dnnl::post_ops ops;
      result_name = fuse_activation(node.outputs.at(0), ops);
      pd.emplace(make_desc(dst_any), attr(ops), cpu_engine());
      out = allocate(result_name, pd->dst_desc());
    }
    const memory weights = weights_.get(node.inputs[1], pd->weights_desc(), plain_desc(weight_dims, DataType::f32), w->floats.data());
    memory bias_memory(bias_md, cpu_engine());
    std::memcpy(bias_memory.get_data_handle(), bias.data(), bias.size() * sizeof(float));
    add_step<dnnl::convolution_forward>(*pd, {{DNNL_ARG_SRC, ref(x->md, x->buffer)},
                                              {DNNL_ARG_WEIGHTS, constant_ref(weights)},
                                              {DNNL_ARG_BIAS, constant_ref(bias_memory)},
                                              {DNNL_ARG_DST, ref(out.md, out.buffer)}});
    values_[result_name] = out;
    return {};
  }

  // Constants are bound as their own memories: a ref with buffer = kConstant + index.
  int constant_ref(const memory& m) {
    plan_.constants.push_back(m);
    return ref(m.get_desc(), kConstantBase - static_cast<int>(plan_.constants.size() - 1));
  }

 public:
  static constexpr int kConstantBase = -1000;  // buffer ids at or below: plan_.constants[kConstantBase - id]

 private:
  Status binary(const OnnxNode& node) {
    const OnnxTensor* c0 = constant(node, 0);
    const OnnxTensor* c1 = constant(node, 1);
    if (c0 != nullptr && c1 != nullptr) return fail("both operands are constants");
    const std::string& op = node.op;
    const bool commutative = op == "Add" || op == "Mul" || op == "Max" || op == "Min";
    dnnl::algorithm alg = dnnl::algorithm::binary_add;
    if (op == "Sub") alg = dnnl::algorithm::binary_sub;
    if (op == "Mul") alg = dnnl::algorithm::binary_mul;
    if (op == "Div") alg = dnnl::algorithm::binary_div;
    if (op == "Max") alg = dnnl::algorithm::binary_max;
    if (op == "Min") alg = dnnl::algorithm::binary_min;

    Value a;
    memory::desc b_md;
    int b_ref = -1;
    if (c0 != nullptr || c1 != nullptr) {
      if (c0 != nullptr && !commutative) return fail("a constant first operand of " + op);
      auto x = input(node, c0 != nullptr ? 1 : 0);
      if (!x.ok()) return x.error();
      const OnnxTensor& c = c0 != nullptr ? *c0 : *c1;
      if (!c.is_float()) return fail("integer constant in arithmetic");
      a = *x;
      const Dims xd = a.md.dims();
      Dims cd = to_dims(c.dims);
      if (cd.size() > xd.size()) return fail("constant of rank " + std::to_string(cd.size()) + " broadcast to a lower rank");
      cd.insert(cd.begin(), xd.size() - cd.size(), 1);
      for (std::size_t i = 0; i < cd.size(); ++i) {
        if (cd[i] != 1 && cd[i] != xd[i]) return fail("constant " + dims_string(c.dims) + " does not broadcast to " + dims_string(xd));
      }
      const memory m = constant_memory(c, cd, compute_);
      b_md = m.get_desc();
      b_ref = constant_ref(m);
    } else {
      auto x = input(node, 0);
      auto y = input(node, 1);
      if (!x.ok()) return x.error();
      if (!y.ok()) return y.error();
      const Dims xd = x->md.dims(), yd = y->md.dims();
      if (xd.size() != yd.size()) return fail("operands of different ranks " + dims_string(xd) + " and " + dims_string(yd));
      const bool y_broadcasts = product(yd) <= product(xd);
      if (!y_broadcasts && !commutative) return fail("the first operand broadcasts");
      a = y_broadcasts ? *x : *y;
      const Value& b = y_broadcasts ? *y : *x;
      b_md = b.md;
      b_ref = ref(b.md, b.buffer);
    }
    dnnl::post_ops ops;
    const std::string result_name = fuse_activation(node.outputs.at(0), ops);
    const memory::desc dst_md = a.md.dims().size() == 4 && is_strided(a.md) ? a.md : plain_desc(a.md.dims(), compute_);
    const dnnl::binary::desc desc(alg, a.md, b_md, dst_md);
    const dnnl::binary::primitive_desc pd(desc, attr(ops), cpu_engine());
    const Value out = allocate(result_name, pd.dst_desc());
    add_step<dnnl::binary>(pd, {{DNNL_ARG_SRC_0, ref(a.md, a.buffer)}, {DNNL_ARG_SRC_1, b_ref}, {DNNL_ARG_DST, ref(out.md, out.buffer)}});
    values_[result_name] = out;
    return {};
  }

  Status eltwise(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    auto a = activation(node);
    if (!a.ok()) return a.error();
    const dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, a->alg, x->md, a->alpha, a->beta);
    const dnnl::eltwise_forward::primitive_desc pd(desc, attr(), cpu_engine());
    const Value out = allocate(node.outputs.at(0), pd.dst_desc());
    add_step<dnnl::eltwise_forward>(pd, {{DNNL_ARG_SRC, ref(x->md, x->buffer)}, {DNNL_ARG_DST, ref(out.md, out.buffer)}});
    values_[node.outputs[0]] = out;
    return {};
  }

  Status pool(const OnnxNode& node) {
    auto x = spatial_input(node);
    if (!x.ok()) return x.error();
    const Dims xd = x->md.dims();
    const std::int64_t n = xd[0], c = xd[1], h = xd[2], w = xd[3];
    std::array<std::int64_t, 2> kernel{h, w}, stride{1, 1};
    std::array<std::int64_t, 4> p{0, 0, 0, 0};
    std::int64_t oh = 1, ow = 1;
    dnnl::algorithm alg = dnnl::algorithm::pooling_avg_exclude_padding;
    if (node.op != "GlobalAveragePool") {
      kernel = pair(node.attr_ints("kernel_shape"), 0);
      if (kernel[0] <= 0 || kernel[1] <= 0) return fail("kernel_shape must have 2 positive values");
      stride = pair(node.attr_ints("strides"), 1);
      const auto dilation = pair(node.attr_ints("dilations"), 1);
      if (dilation[0] != 1 || dilation[1] != 1) return fail("dilated pooling");
      auto pads = window_pads(node, h, w, kernel, stride, dilation);
      if (!pads.ok()) return pads.error();
      p = *pads;
      const auto out_size = [&](std::int64_t in, std::int64_t before, std::int64_t after, int i, bool ceil) {
        const std::int64_t span = in + before + after - kernel[i];
        return (ceil ? (span + stride[i] - 1) / stride[i] : span / stride[i]) + 1;
      };
      const bool ceil = node.attr_int("ceil_mode", 0) != 0;
      oh = out_size(h, p[0], p[2], 0, ceil);
      ow = out_size(w, p[1], p[3], 1, ceil);
      if (oh <= 0 || ow <= 0) return fail("window larger than its input");
      if (ceil) {
        while (out_size(h, p[0], p[2], 0, false) < oh) ++p[2];
        while (out_size(w, p[1], p[3], 1, false) < ow) ++p[3];
      }
      if (node.op == "MaxPool") {
        alg = dnnl::algorithm::pooling_max;
      } else if (node.attr_int("count_include_pad", 0) != 0) {
        alg = dnnl::algorithm::pooling_avg_include_padding;
      }
    }
    const memory::desc dst_any({n, c, oh, ow}, x->md.data_type(), Tag::any);
    const dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, alg, x->md, dst_any, {stride[0], stride[1]},
                                           {kernel[0], kernel[1]}, {p[0], p[1]}, {p[2], p[3]});
    const dnnl::pooling_forward::primitive_desc pd(desc, attr(), cpu_engine());
    const Value out = allocate(node.outputs.at(0), pd.dst_desc());
    add_step<dnnl::pooling_forward>(pd, {{DNNL_ARG_SRC, ref(x->md, x->buffer)}, {DNNL_ARG_DST, ref(out.md, out.buffer)}});
    values_[node.outputs[0]] = out;
    return {};
  }

  // A strided (not blocked) copy of a value, for the operations that need one.
  Result<Value> strided(const Value& x, const std::string& name) {
    if (is_strided(x.md)) return x;
    const Dims d = x.md.dims();
    const memory::desc md = d.size() == 4 ? memory::desc(d, x.md.data_type(), Tag::acdb) : plain_desc(d, x.md.data_type());
    const Value out = allocate(name, md);
    VIGIL_RETURN_IF_ERROR(add_reorder(x, out));
    return out;
  }

  Status pad(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    if (node.attr_string("mode", "constant") != "constant") return fail("only constant padding");
    std::vector<std::int64_t> pads = node.attr_ints("pads");
    if (const OnnxTensor* c = constant(node, 1); c != nullptr) pads = c->ints;
    float value = node.attr_float("value", 0.0f);
    if (const OnnxTensor* c = constant(node, 2); c != nullptr && !c->floats.empty()) value = c->floats[0];
    if ((node.inputs.size() > 1 && !node.inputs[1].empty() && constant(node, 1) == nullptr) ||
        (node.inputs.size() > 2 && !node.inputs[2].empty() && constant(node, 2) == nullptr)) {
      return fail("pads and value must be constants");
    }
    const Dims xd = x->md.dims();
    const std::size_t rank = xd.size();
    if (pads.size() != 2 * rank) return fail("pads " + dims_string(pads) + " for a tensor " + dims_string(xd));
    for (const std::int64_t v : pads) {
      if (v < 0) return fail("negative padding (cropping)");
    }
    // Zero padding of height and width read only by a convolution: folded into it.
    const auto readers = consumers_.find(node.outputs.at(0));
    if (rank == 4 && value == 0.0f && pads[0] == 0 && pads[1] == 0 && pads[4] == 0 && pads[5] == 0 &&
        !is_output(node.outputs[0]) && readers != consumers_.end() && readers->second.size() == 1 &&
        model_.nodes[static_cast<std::size_t>(readers->second[0])].op == "Conv" &&
        model_.nodes[static_cast<std::size_t>(readers->second[0])].attr_string("auto_pad", "NOTSET") == "NOTSET") {
      folded_pads_[node.outputs[0]] = {pads[2], pads[3], pads[6], pads[7]};
      share(node.outputs[0], *x);
      return {};
    }
    auto src = strided(*x, node.outputs[0]);
    if (!src.ok()) return src.error();
    Dims out_dims(rank), offsets(rank);
    for (std::size_t i = 0; i < rank; ++i) {
      out_dims[i] = xd[i] + pads[i] + pads[i + rank];
      offsets[i] = pads[i];
    }
    const memory::desc out_md = rank == 4 ? memory::desc(out_dims, x->md.data_type(), Tag::acdb) : plain_desc(out_dims, x->md.data_type());
    const Value out = allocate(node.outputs[0], out_md);
    Step fill;
    fill.fill_ref = ref(out.md, out.buffer);
    if (out.md.data_type() == DataType::bf16) {
      std::uint32_t bits = 0;
      std::memcpy(&bits, &value, sizeof(bits));
      fill.fill_pattern = (bits + 0x7fff + ((bits >> 16) & 1)) >> 16;  // round to nearest even
      fill.fill_element = 2;
    } else {
      std::memcpy(&fill.fill_pattern, &value, sizeof(value));
    }
    plan_.steps.push_back(std::move(fill));
    VIGIL_RETURN_IF_ERROR(add_reorder(*src, Value{out.md.submemory_desc(xd, offsets), out.buffer}));
    values_[node.outputs[0]] = out;
    return {};
  }

  Status transpose(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    const Dims xd = x->md.dims();
    auto perm = node.attr_ints("perm");
    if (perm.empty()) {
      for (std::size_t i = xd.size(); i-- > 0;) perm.push_back(static_cast<std::int64_t>(i));
    }
    if (perm.size() != xd.size()) return fail("perm " + dims_string(perm) + " for a tensor " + dims_string(xd));
    auto src = strided(*x, node.outputs.at(0));
    if (!src.ok()) return src.error();
    // oneDNN's permutation maps input axis -> output axis; ONNX's output axis -> input axis.
    std::vector<int> to(perm.size());
    for (std::size_t i = 0; i < perm.size(); ++i) {
      if (perm[i] < 0 || perm[i] >= static_cast<std::int64_t>(perm.size())) return fail("perm out of range");
      to[static_cast<std::size_t>(perm[i])] = static_cast<int>(i);
    }
    share(node.outputs[0], Value{src->md.permute_axes(to), src->buffer});
    return {};
  }

  Status reshape(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    const Dims xd = x->md.dims();
    const std::int64_t total = product(xd);
    Dims shape;
    if (node.op == "Flatten") {
      std::int64_t axis = node.attr_int("axis", 1);
      if (axis < 0) axis += static_cast<std::int64_t>(xd.size());
      if (axis < 0 || axis > static_cast<std::int64_t>(xd.size())) return fail("axis out of range");
      const std::int64_t outer = product(Dims(xd.begin(), xd.begin() + axis));
      shape = {outer, total / std::max<std::int64_t>(1, outer)};
    } else {
      const OnnxTensor* s = constant(node, 1);
      if (s == nullptr || s->is_float()) return fail("the shape must be an integer constant");
      shape = to_dims(s->ints);
      std::int64_t known = 1;
      int unknown = -1;
      for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == 0 && i < xd.size()) shape[i] = xd[i];
        if (shape[i] == -1) {
          if (unknown >= 0) return fail("more than one -1 in the shape");
          unknown = static_cast<int>(i);
        } else {
          known *= shape[i];
        }
      }
      // A batch dim written into the file as 1 follows the batch.
      if (!shape.empty() && shape[0] == 1 && batch_ != 1 && unknown != 0 && product(shape) * batch_ == total) shape[0] = batch_;
      if (unknown >= 0 && known > 0) shape[static_cast<std::size_t>(unknown)] = total / known;
    }
    if (product(shape) != total) return fail("cannot reshape " + dims_string(xd) + " to " + dims_string(shape));
    Value src = *x;
    if (!is_row_major(src.md)) {
      const Value dense = allocate(node.outputs.at(0), plain_desc(xd, src.md.data_type()));
      VIGIL_RETURN_IF_ERROR(add_reorder(src, dense));
      src = dense;
    }
    share(node.outputs.at(0), Value{plain_desc(shape, src.md.data_type()), src.buffer});
    return {};
  }

  // Gemm (alpha = beta = 1) and MatMul with a constant 2-D right operand: an inner product.
  Status gemm(const OnnxNode& node) {
    auto x = input(node, 0);
    if (!x.ok()) return x.error();
    const OnnxTensor* w = constant(node, 1);
    if (w == nullptr || w->dims.size() != 2 || !w->is_float()) return fail("the right operand must be a 2-D float constant");
    const Dims xd = x->md.dims();
    if (xd.size() != 2) return fail("the left operand must be 2-D, got " + dims_string(xd));
    if (node.attr_int("transA", 0) != 0) return fail("transA");
    if (node.attr_float("alpha", 1.0f) != 1.0f || node.attr_float("beta", 1.0f) != 1.0f) return fail("alpha or beta other than 1");
    const bool trans_b = node.op == "Gemm" && node.attr_int("transB", 0) != 0;
    const std::int64_t k = trans_b ? w->dims[1] : w->dims[0];
    const std::int64_t out_n = trans_b ? w->dims[0] : w->dims[1];
    if (k != xd[1]) return fail("weights " + dims_string(w->dims) + " do not fit input " + dims_string(xd));
    std::vector<float> bias(static_cast<std::size_t>(out_n), 0.0f);
    if (node.op == "Gemm") {
      if (const OnnxTensor* b = constant(node, 2); b != nullptr) {
        if (!b->is_float()) return fail("integer bias");
        if (b->element_count() == out_n) {
          bias = b->floats;
        } else if (b->element_count() == 1) {
          std::fill(bias.begin(), bias.end(), b->floats[0]);
        } else {
          return fail("bias " + dims_string(b->dims) + " is not one value per output");
        }
      } else if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
        return fail("bias must be a constant");
      }
    }
    const memory::desc weights_any({out_n, k}, compute_, Tag::any);
    const memory::desc bias_md({out_n}, DataType::f32, Tag::a);
    const memory::desc dst_md = plain_desc({xd[0], out_n}, compute_);
    dnnl::post_ops ops;
    const std::string result_name = fuse_activation(node.outputs.at(0), ops);
    const dnnl::inner_product_forward::desc desc(dnnl::prop_kind::forward_inference, x->md, weights_any, bias_md, dst_md);
    const dnnl::inner_product_forward::primitive_desc pd(desc, attr(ops), cpu_engine());
    // The file's [k, n] (or [n, k] with transB) as oneDNN's [n, k].
    const memory::desc source = trans_b ? plain_desc({out_n, k}, DataType::f32) : memory::desc({out_n, k}, DataType::f32, Tag::ba);
    const memory weights = weights_.get(node.inputs[1], pd.weights_desc(), source, w->floats.data());
    memory bias_memory(bias_md, cpu_engine());
    std::memcpy(bias_memory.get_data_handle(), bias.data(), bias.size() * sizeof(float));
    const Value out = allocate(result_name, pd.dst_desc());
    add_step<dnnl::inner_product_forward>(pd, {{DNNL_ARG_SRC, ref(x->md, x->buffer)},
                                               {DNNL_ARG_WEIGHTS, constant_ref(weights)},
                                               {DNNL_ARG_BIAS, constant_ref(bias_memory)},
                                               {DNNL_ARG_DST, ref(out.md, out.buffer)}});
    values_[result_name] = out;
    return {};
  }

  const OnnxModel& model_;
  std::int64_t batch_;
  const std::vector<std::string>& outputs_;
  DataType compute_;
  WeightCache& weights_;
  Plan& plan_;
  std::map<std::string, Value> values_;
  std::map<std::string, int> last_use_;
  std::map<std::string, std::vector<int>> consumers_;
  std::map<std::string, std::array<std::int64_t, 4>> folded_pads_;
  std::vector<BufferState> buffers_;
  std::vector<bool> skipped_;
  const OnnxNode* node_ = nullptr;
  int index_ = 0;
};

// Allocates a plan's buffers and binds every step's arguments.
void bind(Plan& plan) {
  plan.buffers.resize(plan.buffer_bytes.size());
  for (std::size_t b = 0; b < plan.buffers.size(); ++b) plan.buffers[b].assign(plan.buffer_bytes[b], 0);
  plan.scratch.assign(std::max<std::size_t>(plan.scratch_bytes, 1), 0);
  plan.scratch_memory = memory(memory::desc({static_cast<std::int64_t>(plan.scratch.size())}, DataType::u8, Tag::a), cpu_engine(),
                               plan.scratch.data());
  plan.memories.clear();
  for (std::size_t r = 0; r < plan.refs.size(); ++r) {
    const MemRef& m = plan.refs[r];
    void* handle = nullptr;
    if (m.buffer <= Lowering::kConstantBase) {
      plan.memories.push_back(plan.constants[static_cast<std::size_t>(Lowering::kConstantBase - m.buffer)]);
      continue;
    }
    if (m.buffer >= 0) {
      handle = plan.buffers[static_cast<std::size_t>(m.buffer)].data();
    } else {
      plan.external_refs.push_back(static_cast<int>(r));
    }
    plan.memories.emplace_back(m.md, cpu_engine(), handle);
  }
  for (Step& step : plan.steps) {
    if (!step.primitive) continue;
    step.exec.clear();
    for (const auto& [arg, r] : step.args) step.exec.push_back({arg, plan.memories[static_cast<std::size_t>(r)].get()});
    step.exec.push_back({DNNL_ARG_SCRATCHPAD, plan.scratch_memory.get()});
  }
  plan.stream = std::make_unique<dnnl::stream>(cpu_engine());
}

class OnednnBackend final : public Backend {
 public:
  OnednnBackend(OnnxModel model, std::vector<std::string> outputs, DataType compute, int threads, int max_chunk)
      : model_(std::move(model)), output_names_(std::move(outputs)), compute_(compute), threads_(threads), max_chunk_(max_chunk) {}

  Result<Plan*> plan_for(std::int64_t batch) {
    const auto it = plans_.find(batch);
    if (it != plans_.end()) return it->second.get();
    auto plan = std::make_unique<Plan>();
    // oneDNN sizes a primitive's work split by the thread count when it is created.
    omp_set_num_threads(threads_);
    try {
      Lowering lowering(model_, batch, output_names_, compute_, weights_, *plan);
      VIGIL_RETURN_IF_ERROR(lowering.build());
      bind(*plan);
    } catch (const dnnl::error& e) {
      return Error{ErrorCode::invalid_argument, model_.path + ": onednn: " + e.what()};
    }
    for (const Dims& d : plan->output_dims) {
      if (dynamic_batch() && (d.empty() || d[0] != batch)) {
        return Error{ErrorCode::invalid_argument, model_.path + ": an output " + dims_string(d) + " does not follow the batch of " +
                                                      std::to_string(batch)};
      }
    }
    return plans_.emplace(batch, std::move(plan)).first->second.get();
  }

  Status infer(const Tensor& input, std::vector<Tensor>& outputs) override {
    VIGIL_RETURN_IF_ERROR(check_input(input));
    const std::int64_t batch = input.dim(0);
    outputs.resize(output_names_.size());
    omp_set_num_threads(threads_);
    // Chunks of at most max_chunk items (one chunk when the batch is fixed by the file).
    std::int64_t done = 0;
    while (done < batch) {
      const std::int64_t chunk = dynamic_batch() ? std::min<std::int64_t>(batch - done, max_chunk_) : batch;
      auto found = plan_for(chunk);
      if (!found.ok()) return found.error();
      Plan& plan = **found;
      if (done == 0) {
        for (std::size_t i = 0; i < plan.output_dims.size(); ++i) {
          Dims d = plan.output_dims[i];
          if (dynamic_batch()) d[0] = batch;
          outputs[i].reshape(std::span<const std::int64_t>(d.data(), d.size()));
        }
      }
      VIGIL_RETURN_IF_ERROR(run(plan, input, done, outputs));
      done += chunk;
    }
    return {};
  }

  // Chooses max_chunk: four images as one batch of 4 against four calls of 1 (best of 3);
  // a small model whose activations stay in cache runs faster image by image.
  Status calibrate() {
    if (!dynamic_batch() || max_chunk_ > 0) return {};
    Tensor input;
    Dims dims = to_dims(model_.inputs[0].dims);
    dims[0] = 4;
    input.reshape(std::span<const std::int64_t>(dims.data(), dims.size()));
    std::fill(input.data(), input.data() + input.size(), 0.0f);
    std::vector<Tensor> outputs;
    double one_by_one = 1e9, batched = 1e9;
    for (int round = 0; round < 3; ++round) {
      for (const int chunk : {1, 4}) {
        max_chunk_ = chunk;
        VIGIL_RETURN_IF_ERROR(infer(input, outputs));  // plans on first use
        const auto start = std::chrono::steady_clock::now();
        VIGIL_RETURN_IF_ERROR(infer(input, outputs));
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        (chunk == 1 ? one_by_one : batched) = std::min(chunk == 1 ? one_by_one : batched, s);
      }
    }
    max_chunk_ = batched < 0.95 * one_by_one ? 1 << 30 : 1;
    if (max_chunk_ == 1) plans_.erase(4);
    return {};
  }

  const std::vector<std::string>& output_names() const override { return output_names_; }
  std::string name() const override { return compute_ == DataType::bf16 ? "onednn-bf16" : "onednn"; }

 private:
  bool dynamic_batch() const { return model_.inputs[0].dims[0] < 0; }

  // Items [first, first + plan.batch) of the call, read and written in place.
  Status run(Plan& plan, const Tensor& input, std::int64_t first, std::vector<Tensor>& outputs) {
    for (const int r : plan.external_refs) {
      const int buffer = plan.refs[static_cast<std::size_t>(r)].buffer;
      void* handle = nullptr;
      if (buffer == kInputBuffer) {
        handle = const_cast<float*>(input.data()) + first * static_cast<std::int64_t>(input.item_size());
      } else {
        Tensor& out = outputs[static_cast<std::size_t>(-2 - buffer)];
        handle = out.data() + first * static_cast<std::int64_t>(out.item_size());
      }
      plan.memories[static_cast<std::size_t>(r)].set_data_handle(handle, *plan.stream);
    }
    for (const Step& step : plan.steps) {
      if (!step.primitive) {
        fill(plan, step);
        continue;
      }
      if (dnnl_primitive_execute(step.primitive.get(), plan.stream->get(), static_cast<int>(step.exec.size()), step.exec.data()) !=
          dnnl_success) {
        return Error{ErrorCode::internal, model_.path + ": onednn: inference failed"};
      }
    }
    if (dnnl_stream_wait(plan.stream->get()) != dnnl_success) {
      return Error{ErrorCode::internal, model_.path + ": onednn: inference failed"};
    }
    return {};
  }

  static void fill(Plan& plan, const Step& step) {
    const MemRef& m = plan.refs[static_cast<std::size_t>(step.fill_ref)];
    std::uint8_t* data = plan.buffers[static_cast<std::size_t>(m.buffer)].data();
    const std::size_t bytes = m.md.get_size();
    if (step.fill_pattern == 0) {
      std::memset(data, 0, bytes);
    } else if (step.fill_element == 2) {
      const auto v = static_cast<std::uint16_t>(step.fill_pattern);
      for (std::size_t i = 0; i + 2 <= bytes; i += 2) std::memcpy(data + i, &v, 2);
    } else {
      for (std::size_t i = 0; i + 4 <= bytes; i += 4) std::memcpy(data + i, &step.fill_pattern, 4);
    }
  }

  Status check_input(const Tensor& input) const {
    const auto& expected = model_.inputs[0].dims;
    bool fits = input.rank() == expected.size() && input.rank() > 0 && input.dim(0) > 0;
    for (std::size_t i = 0; fits && i < expected.size(); ++i) fits = expected[i] < 0 || expected[i] == input.dim(i);
    if (!fits) {
      return Error{ErrorCode::invalid_argument, model_.path + ": input " + input.shape_string() + " does not fit the model's " +
                                                    dims_string(expected)};
    }
    return {};
  }

  OnnxModel model_;
  std::vector<std::string> output_names_;
  DataType compute_;
  int threads_;
  int max_chunk_;
  WeightCache weights_;
  std::map<std::int64_t, std::unique_ptr<Plan>> plans_;
};

}  // namespace

bool cpu_runs_bf16() {
  const auto isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
  return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

void set_onednn_threads(int threads) { g_onednn_threads.store(threads > 0 ? threads : 1); }

Result<std::unique_ptr<Backend>> create_onednn_backend(const BackendOptions& options) {
  auto model = read_onnx_model(options.model_path);
  if (!model.ok()) return model.error();
  if (model->inputs.size() != 1) {
    return Error{ErrorCode::invalid_argument, options.model_path + ": onednn: the model has " + std::to_string(model->inputs.size()) +
                                                  " inputs; vigil feeds one"};
  }
  const auto& dims = model->inputs[0].dims;
  if (dims.empty() || std::any_of(dims.begin() + 1, dims.end(), [](std::int64_t d) { return d <= 0; })) {
    return Error{ErrorCode::invalid_argument, options.model_path + ": onednn: the input " + dims_string(dims) +
                                                  " needs fixed sizes after the batch axis"};
  }
  if (options.precision == Precision::bf16 && !cpu_runs_bf16()) {
    return Error{ErrorCode::invalid_argument, options.model_path + ": onednn: precision bf16 needs a CPU with AVX512_BF16 (this one has not)"};
  }
  const DataType compute = options.precision == Precision::bf16 ? DataType::bf16 : DataType::f32;
  std::vector<std::string> outputs = options.output_names;
  if (outputs.empty()) {
    for (const auto& o : model->outputs) outputs.push_back(o.name);
  }
  const std::int64_t first_batch = dims[0] > 0 ? dims[0] : 1;
  auto backend = std::make_unique<OnednnBackend>(std::move(*model), outputs, compute, g_onednn_threads.load(), options.max_chunk);
  // Plan now, so an unsupported graph (or bf16 on a CPU without it) fails at load.
  auto planned = backend->plan_for(first_batch);
  if (!planned.ok()) return planned.error();
  VIGIL_RETURN_IF_ERROR(backend->calibrate());
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace vigil
