// oneDNN backend: the imported graph (model_graph.h) lowered into a sequence of oneDNN
// primitives.
//
// Every value is a oneDNN memory descriptor over the ONNX (logical) dims: convolutions choose
// their own layouts (channels-last on AVX-512), a Transpose only permutes a descriptor's
// strides, a Reshape reinterprets dense data (a blocked or permuted value is reordered first),
// and the activation the importer fused into a convolution, a fully connected layer or an
// elementwise op runs as its post-op; a convolution whose only reader is a residual Add
// accumulates into the Add's other operand (a sum post-op). Buffers are reused once their last
// reader has run, so the working set of a small model stays in cache. Graph inputs and
// outputs are float32 in ONNX order; with bf16 precision the values in between are bfloat16
// (weights converted at load, accumulation in float32), on CPUs with AVX512_BF16.
//
// One plan per chunk size (graph_backend.h), made on first use: primitives, buffers and the
// argument arrays are fixed, so a steady-state call allocates nothing (scratchpads are
// vigil's). Debian's oneDNN threads with OpenMP, and a primitive keeps the thread count it was
// created with: plans are made, and calls run, with the calling thread's OpenMP count set to
// the backend's threads, so workers with one intra-op thread each never start an OpenMP team.
// A layer that would run on oneDNN's reference code is noted, and refused when the options ask
// (backend: auto), with the layer and the CPU named.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>

#include "vigil/infer/backend.h"
#include "vigil/infer/backend_threads.h"
#include "vigil/infer/graph_backend.h"

namespace vigil {

namespace {

using dnnl::memory;
using DataType = memory::data_type;
using Tag = memory::format_tag;

std::atomic<int> g_onednn_threads{1};

constexpr int kInputBuffer = -1;  // the caller's input tensor
// Buffers -2, -3, ... are the caller's output tensors (output i is -2 - i).
int output_buffer(std::size_t i) { return -2 - static_cast<int>(i); }
constexpr int kConstantBase = -1000;  // buffer ids at or below: plan.constants[kConstantBase - id]

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// The instruction set oneDNN dispatches to on this CPU, for errors.
std::string isa_name() {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "SSE4.1";
    case dnnl_cpu_isa_avx: return "AVX";
    case dnnl_cpu_isa_avx2: return "AVX2";
    case dnnl_cpu_isa_avx512_core: return "AVX-512";
    case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 VNNI";
    case dnnl_cpu_isa_avx512_core_bf16: return "AVX-512 BF16";
    case dnnl_cpu_isa_avx512_core_amx: return "AVX-512 AMX";
    default: return "this ISA";
  }
}

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

// The imported graph lowered at one batch size into a Plan.
class Lowering {
 public:
  Lowering(const ModelGraph& graph, std::map<std::string, Dims> shapes, DataType compute, bool refuse_reference_kernels,
           WeightCache& weights, Plan& plan)
      : g_(graph), shapes_(std::move(shapes)), compute_(compute), refuse_reference_(refuse_reference_kernels),
        weights_(weights), plan_(plan) {}

  Status build(std::int64_t batch) {
    plan_.batch = batch;
    for (std::size_t i = 0; i < g_.ops.size(); ++i) {
      for (const auto& name : g_.ops[i].inputs) readers_[name].push_back(static_cast<int>(i));
    }
    Value input{plain_desc(shapes_.at(g_.input), DataType::f32), kInputBuffer};
    if (compute_ != DataType::f32) {
      Value converted = allocate(g_.input, plain_desc(shapes_.at(g_.input), compute_));
      VIGIL_RETURN_IF_ERROR(add_reorder(input, converted));
      input = converted;
    }
    values_[g_.input] = input;
    skipped_.assign(g_.ops.size(), false);
    try {
      for (std::size_t i = 0; i < g_.ops.size(); ++i) {
        index_ = static_cast<int>(i);
        op_ = &g_.ops[i];
        if (!skipped_[i]) VIGIL_RETURN_IF_ERROR(lower(*op_));
        release_after(index_);
      }
      op_ = nullptr;
      VIGIL_RETURN_IF_ERROR(bind_outputs());
    } catch (const dnnl::error& e) {
      return fail(std::string("rejected by oneDNN: ") + e.what());
    }
    if (refuse_reference_ && reference_kernel_) return *reference_kernel_;
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
    const std::string where = op_ == nullptr ? std::string() : " (" + op_->describe() + ")";
    return Error{ErrorCode::invalid_argument, g_.path + ": onednn: " + what + where};
  }

  Status bind_outputs() {
    for (std::size_t i = 0; i < g_.outputs.size(); ++i) {
      const auto it = values_.find(g_.outputs[i]);
      if (it == values_.end()) return fail("output '" + g_.outputs[i] + "' is not computed by the graph");
      const Dims dims = it->second.md.dims();
      VIGIL_RETURN_IF_ERROR(add_reorder(it->second, Value{plain_desc(dims, DataType::f32), output_buffer(i)}));
      plan_.output_dims.push_back(dims);
    }
    return {};
  }

  int last_use(const std::string& name) const {
    const auto it = g_.last_use.find(name);
    return it == g_.last_use.end() ? index_ : std::max(index_, it->second);
  }

  // A buffer for a new value named `name` (reusing one whose readers have all run).
  Value allocate(const std::string& name, const memory::desc& md) {
    const std::size_t bytes = md.get_size();
    int chosen = -1;
    for (std::size_t b = 0; b < buffers_.size(); ++b) {
      if (!buffers_[b].free) continue;
      // Prefer a buffer already large enough, the smallest such.
      const auto c = static_cast<std::size_t>(chosen);
      if (chosen < 0 || (buffers_[b].bytes >= bytes && (buffers_[c].bytes < bytes || buffers_[b].bytes < buffers_[c].bytes))) {
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

  // Constants are bound as their own memories: a ref with buffer = kConstantBase - index.
  int constant_ref(const memory& m) {
    plan_.constants.push_back(m);
    return ref(m.get_desc(), kConstantBase - static_cast<int>(plan_.constants.size() - 1));
  }

  dnnl::primitive_attr attr(const dnnl::post_ops& ops = dnnl::post_ops()) const {
    dnnl::primitive_attr a;
    a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    a.set_post_ops(ops);
    return a;
  }

  template <typename Primitive, typename PrimitiveDesc>
  void add_step(const PrimitiveDesc& pd, std::vector<std::pair<int, int>> args) {
    // oneDNN's reference kernels are correct and tens of times slower than its JIT ones (this
    // oneDNN has no AVX2 kernel for channels-last depthwise or plain-weight convolutions).
    const std::string impl = pd.impl_info_str();
    if (!reference_kernel_ && impl.rfind("ref", 0) == 0) {
      reference_kernel_ = fail("no optimised kernel for this layer on this CPU (" + impl + ", " + isa_name() +
                               "); oneDNN would run its reference code");
    }
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

  Result<Value> input(const GraphOp& op, std::size_t i) const {
    const auto it = values_.find(op.inputs.at(i));
    if (it == values_.end()) return fail("input '" + op.inputs[i] + "' is not computed before this op");
    return it->second;
  }

  bool is_output(const std::string& name) const { return std::find(g_.outputs.begin(), g_.outputs.end(), name) != g_.outputs.end(); }

  struct Eltwise {
    dnnl::algorithm alg;
    float alpha = 0, beta = 0;
  };
  static Eltwise eltwise_of(const Activation& a) {
    switch (a.kind) {
      case Activation::none:
      case Activation::relu: return {dnnl::algorithm::eltwise_relu};
      case Activation::leaky_relu: return {dnnl::algorithm::eltwise_relu, a.alpha};
      case Activation::sigmoid: return {dnnl::algorithm::eltwise_logistic};
      case Activation::elu: return {dnnl::algorithm::eltwise_elu, a.alpha};
      case Activation::hardswish: return {dnnl::algorithm::eltwise_hardswish};
      case Activation::clip: return {dnnl::algorithm::eltwise_clip, a.alpha, a.beta};
    }
    return {dnnl::algorithm::eltwise_relu};
  }
  static void append_activation(const Activation& a, dnnl::post_ops& ops) {
    if (a.kind == Activation::none) return;
    const Eltwise e = eltwise_of(a);
    ops.append_eltwise(1.0f, e.alg, e.alpha, e.beta);
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

  Status lower(const GraphOp& op) {
    switch (op.kind) {
      case OpKind::conv: return conv(op);
      case OpKind::binary: return binary(op);
      case OpKind::activation: return eltwise(op);
      case OpKind::max_pool:
      case OpKind::average_pool:
      case OpKind::global_average_pool: return pool(op);
      case OpKind::batch_norm: return batch_norm(op);
      case OpKind::pad: return pad(op);
      case OpKind::transpose: return transpose(op);
      case OpKind::reshape: return reshape(op);
      case OpKind::fully_connected: return fully_connected(op);
      case OpKind::identity: {
        auto x = input(op, 0);
        if (!x.ok()) return x.error();
        share(op.output, *x);
        return {};
      }
      case OpKind::prelu:
      case OpKind::softmax:
      case OpKind::resize: break;
    }
    return fail("operator " + op.op_type + " is not lowered to oneDNN");
  }

  // For a convolution output read only by an Add: that Add and its other operand, when the
  // operand is computed already, has the convolution's dims and type, lives in vigil's own
  // buffer (not the one the convolution reads) and nothing reads that buffer after the Add.
  std::optional<std::pair<const GraphOp*, Value>> residual_operand(const GraphOp& conv, const Dims& dims, int src_buffer) const {
    const auto readers = readers_.find(conv.output);
    if (is_output(conv.output) || readers == readers_.end() || readers->second.size() != 1) return std::nullopt;
    const int at = readers->second[0];
    const GraphOp& add = g_.ops[static_cast<std::size_t>(at)];
    if (add.kind != OpKind::binary || add.binary != BinaryOp::add || add.inputs[0] == add.inputs[1] || is_output(add.output)) {
      return std::nullopt;
    }
    const std::string& other = add.inputs[0] == conv.output ? add.inputs[1] : add.inputs[0];
    const auto it = values_.find(other);
    if (it == values_.end() || it->second.buffer < 0 || it->second.buffer == src_buffer) return std::nullopt;
    const Value& v = it->second;
    if (v.md.dims() != dims || v.md.data_type() != compute_ || !is_strided(v.md)) return std::nullopt;
    if (buffers_[static_cast<std::size_t>(v.buffer)].last_use > at) return std::nullopt;
    return std::make_pair(&add, v);
  }

  Status conv(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    const OnnxTensor& w = *g_.constant(op.inputs[1]);
    const OnnxTensor& b = *g_.constant(op.inputs[2]);
    const Dims& out_dims = shapes_.at(op.output);
    const std::int64_t out_c = w.dims[0], group_in = w.dims[1], kh = w.dims[2], kw = w.dims[3];
    const Window& win = op.window;
    const Dims weight_dims = op.group > 1 ? Dims{op.group, out_c / op.group, group_in, kh, kw} : Dims{out_c, group_in, kh, kw};
    const memory::desc weights_any(weight_dims, compute_, Tag::any);
    const memory::desc bias_md({out_c}, DataType::f32, Tag::a);
    const Dims conv_dims{x->md.dims()[0], out_c, out_dims[2], out_dims[3]};
    const memory::desc dst_any(conv_dims, compute_, Tag::any);
    const auto make_desc = [&](const memory::desc& dst) {
      return dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, x->md,
                                             weights_any, bias_md, dst, {win.stride[0], win.stride[1]},
                                             {win.dilation[0] - 1, win.dilation[1] - 1}, {win.pads[0], win.pads[1]},
                                             {win.pads[2], win.pads[3]});
    };
    // A residual Add whose other operand is not read after it: the convolution accumulates
    // into that operand's buffer (a sum post-op) instead of a separate pass over both.
    std::optional<dnnl::convolution_forward::primitive_desc> pd;
    std::string result_name;
    Value out;
    if (const auto residual = residual_operand(op, conv_dims, x->buffer); residual && op.activation.kind == Activation::none) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);
      const GraphOp& add = *residual->first;
      append_activation(add.activation, ops);
      try {
        pd.emplace(make_desc(residual->second.md), attr(ops), cpu_engine());
        skipped_[static_cast<std::size_t>(&add - g_.ops.data())] = true;
        result_name = add.output;
        out = residual->second;
        share(result_name, out);
      } catch (const dnnl::error&) {
        pd.reset();  // not offered for this layout: the Add runs on its own
      }
    }
    if (!pd) {
      dnnl::post_ops ops;
      append_activation(op.activation, ops);
      result_name = op.output;
      pd.emplace(make_desc(dst_any), attr(ops), cpu_engine());
      out = allocate(result_name, pd->dst_desc());
    }
    const memory weights = weights_.get(op.inputs[1], pd->weights_desc(), plain_desc(weight_dims, DataType::f32), w.floats.data());
    memory bias_memory(bias_md, cpu_engine());
    std::memcpy(bias_memory.get_data_handle(), b.floats.data(), b.floats.size() * sizeof(float));
    add_step<dnnl::convolution_forward>(*pd, {{DNNL_ARG_SRC, ref(x->md, x->buffer)},
                                              {DNNL_ARG_WEIGHTS, constant_ref(weights)},
                                              {DNNL_ARG_BIAS, constant_ref(bias_memory)},
                                              {DNNL_ARG_DST, ref(out.md, out.buffer)}});
    values_[result_name] = out;
    return {};
  }

  // The operand memory of a constant broadcast against `like`.
  Result<int> broadcast_constant(const OnnxTensor& c, const Dims& like, memory::desc& md) {
    Dims cd = c.dims;
    if (cd.size() > like.size()) return fail("constant of rank " + std::to_string(cd.size()) + " broadcast to a lower rank");
    cd.insert(cd.begin(), like.size() - cd.size(), 1);
    for (std::size_t i = 0; i < cd.size(); ++i) {
      if (cd[i] != 1 && cd[i] != like[i]) return fail("constant " + dims_string(c.dims) + " does not broadcast to " + dims_string(like));
    }
    const memory m = constant_memory(c, cd, compute_);
    md = m.get_desc();
    return constant_ref(m);
  }

  Status binary_step(dnnl::algorithm alg, const Value& a, const memory::desc& b_md, int b_ref, const Activation& activation,
                     const std::string& result_name) {
    dnnl::post_ops ops;
    append_activation(activation, ops);
    const memory::desc dst_md = a.md.dims().size() == 4 && is_strided(a.md) ? a.md : plain_desc(a.md.dims(), compute_);
    const dnnl::binary::desc desc(alg, a.md, b_md, dst_md);
    const dnnl::binary::primitive_desc pd(desc, attr(ops), cpu_engine());
    const Value out = allocate(result_name, pd.dst_desc());
    add_step<dnnl::binary>(pd, {{DNNL_ARG_SRC_0, ref(a.md, a.buffer)}, {DNNL_ARG_SRC_1, b_ref}, {DNNL_ARG_DST, ref(out.md, out.buffer)}});
    values_[result_name] = out;
    return {};
  }

  static dnnl::algorithm algorithm(BinaryOp op) {
    switch (op) {
      case BinaryOp::add: return dnnl::algorithm::binary_add;
      case BinaryOp::sub: return dnnl::algorithm::binary_sub;
      case BinaryOp::mul: return dnnl::algorithm::binary_mul;
      case BinaryOp::div: return dnnl::algorithm::binary_div;
      case BinaryOp::max: return dnnl::algorithm::binary_max;
      case BinaryOp::min: return dnnl::algorithm::binary_min;
    }
    return dnnl::algorithm::binary_add;
  }

  Status binary(const GraphOp& op) {
    const OnnxTensor* c0 = g_.constant(op.inputs[0]);
    const OnnxTensor* c1 = g_.constant(op.inputs[1]);
    const bool commutative = op.binary == BinaryOp::add || op.binary == BinaryOp::mul || op.binary == BinaryOp::max ||
                             op.binary == BinaryOp::min;
    memory::desc b_md;
    int b_ref = -1;
    Value a;
    if (c0 != nullptr || c1 != nullptr) {
      if (c0 != nullptr && !commutative) return fail("a constant first operand");
      auto x = input(op, c0 != nullptr ? 1 : 0);
      if (!x.ok()) return x.error();
      a = *x;
      auto r = broadcast_constant(c0 != nullptr ? *c0 : *c1, a.md.dims(), b_md);
      if (!r.ok()) return r.error();
      b_ref = *r;
    } else {
      auto x = input(op, 0);
      auto y = input(op, 1);
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
    return binary_step(algorithm(op.binary), a, b_md, b_ref, op.activation, op.output);
  }

  // y = x * scale + shift per channel: two binary steps.
  Status batch_norm(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    const Dims xd = x->md.dims();
    Dims per_channel(xd.size(), 1);
    per_channel[1] = xd[1];
    const memory scale = constant_memory(*g_.constant(op.inputs[1]), per_channel, compute_);
    const memory shift = constant_memory(*g_.constant(op.inputs[2]), per_channel, compute_);
    VIGIL_RETURN_IF_ERROR(binary_step(dnnl::algorithm::binary_mul, *x, scale.get_desc(), constant_ref(scale), {}, op.output));
    return binary_step(dnnl::algorithm::binary_add, values_.at(op.output), shift.get_desc(), constant_ref(shift), {}, op.output);
  }

  Status eltwise(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    const Eltwise e = eltwise_of(op.activation);
    const dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, e.alg, x->md, e.alpha, e.beta);
    const dnnl::eltwise_forward::primitive_desc pd(desc, attr(), cpu_engine());
    const Value out = allocate(op.output, pd.dst_desc());
    add_step<dnnl::eltwise_forward>(pd, {{DNNL_ARG_SRC, ref(x->md, x->buffer)}, {DNNL_ARG_DST, ref(out.md, out.buffer)}});
    values_[op.output] = out;
    return {};
  }

  Status pool(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    const Dims xd = x->md.dims();
    const Dims& od = shapes_.at(op.output);
    Window w = op.window;
    dnnl::algorithm alg = dnnl::algorithm::pooling_avg_exclude_padding;
    if (op.kind == OpKind::global_average_pool) {
      w.kernel = {xd[2], xd[3]};
    } else if (op.kind == OpKind::max_pool) {
      alg = dnnl::algorithm::pooling_max;
    } else if (w.count_include_pad) {
      alg = dnnl::algorithm::pooling_avg_include_padding;
    }
    if (w.dilation[0] != 1 || w.dilation[1] != 1) return fail("dilated pooling");
    const memory::desc dst_any({xd[0], xd[1], od[2], od[3]}, x->md.data_type(), Tag::any);
    const dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, alg, x->md, dst_any, {w.stride[0], w.stride[1]},
                                           {w.kernel[0], w.kernel[1]}, {w.pads[0], w.pads[1]}, {w.pads[2], w.pads[3]});
    const dnnl::pooling_forward::primitive_desc pd(desc, attr(), cpu_engine());
    const Value out = allocate(op.output, pd.dst_desc());
    add_step<dnnl::pooling_forward>(pd, {{DNNL_ARG_SRC, ref(x->md, x->buffer)}, {DNNL_ARG_DST, ref(out.md, out.buffer)}});
    values_[op.output] = out;
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

  Status pad(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    auto src = strided(*x, op.output);
    if (!src.ok()) return src.error();
    const Dims xd = x->md.dims();
    const std::size_t rank = xd.size();
    const Dims offsets(op.pads.begin(), op.pads.begin() + static_cast<std::ptrdiff_t>(rank));
    const Dims& out_dims = shapes_.at(op.output);
    const memory::desc out_md = rank == 4 ? memory::desc(out_dims, x->md.data_type(), Tag::acdb) : plain_desc(out_dims, x->md.data_type());
    const Value out = allocate(op.output, out_md);
    Step fill;
    fill.fill_ref = ref(out.md, out.buffer);
    if (out.md.data_type() == DataType::bf16) {
      std::uint32_t bits = 0;
      std::memcpy(&bits, &op.pad_value, sizeof(bits));
      fill.fill_pattern = (bits + 0x7fff + ((bits >> 16) & 1)) >> 16;  // round to nearest even
      fill.fill_element = 2;
    } else {
      std::memcpy(&fill.fill_pattern, &op.pad_value, sizeof(op.pad_value));
    }
    plan_.steps.push_back(std::move(fill));
    VIGIL_RETURN_IF_ERROR(add_reorder(*src, Value{out.md.submemory_desc(xd, offsets), out.buffer}));
    values_[op.output] = out;
    return {};
  }

  Status transpose(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    auto src = strided(*x, op.output);
    if (!src.ok()) return src.error();
    // oneDNN's permutation maps input axis -> output axis; ONNX's output axis -> input axis.
    std::vector<int> to(op.perm.size());
    for (std::size_t i = 0; i < op.perm.size(); ++i) to[static_cast<std::size_t>(op.perm[i])] = static_cast<int>(i);
    share(op.output, Value{src->md.permute_axes(to), src->buffer});
    return {};
  }

  Status reshape(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    Value src = *x;
    if (!is_row_major(src.md)) {
      const Value dense = allocate(op.output, plain_desc(src.md.dims(), src.md.data_type()));
      VIGIL_RETURN_IF_ERROR(add_reorder(src, dense));
      src = dense;
    }
    share(op.output, Value{plain_desc(shapes_.at(op.output), src.md.data_type()), src.buffer});
    return {};
  }

  // y = x W^T + b: an inner product.
  Status fully_connected(const GraphOp& op) {
    auto x = input(op, 0);
    if (!x.ok()) return x.error();
    const Dims xd = x->md.dims();
    if (xd.size() != 2) return fail("the left operand must be 2-D, got " + dims_string(xd));
    const OnnxTensor& w = *g_.constant(op.inputs[1]);
    const OnnxTensor& b = *g_.constant(op.inputs[2]);
    const std::int64_t out_n = w.dims[0], k = w.dims[1];
    const memory::desc weights_any({out_n, k}, compute_, Tag::any);
    const memory::desc bias_md({out_n}, DataType::f32, Tag::a);
    dnnl::post_ops ops;
    append_activation(op.activation, ops);
    const dnnl::inner_product_forward::desc desc(dnnl::prop_kind::forward_inference, x->md, weights_any, bias_md,
                                                 plain_desc({xd[0], out_n}, compute_));
    const dnnl::inner_product_forward::primitive_desc pd(desc, attr(ops), cpu_engine());
    const memory weights = weights_.get(op.inputs[1], pd.weights_desc(), plain_desc({out_n, k}, DataType::f32), w.floats.data());
    memory bias_memory(bias_md, cpu_engine());
    std::memcpy(bias_memory.get_data_handle(), b.floats.data(), b.floats.size() * sizeof(float));
    const Value out = allocate(op.output, pd.dst_desc());
    add_step<dnnl::inner_product_forward>(pd, {{DNNL_ARG_SRC, ref(x->md, x->buffer)},
                                               {DNNL_ARG_WEIGHTS, constant_ref(weights)},
                                               {DNNL_ARG_BIAS, constant_ref(bias_memory)},
                                               {DNNL_ARG_DST, ref(out.md, out.buffer)}});
    values_[op.output] = out;
    return {};
  }

  const ModelGraph& g_;
  const std::map<std::string, Dims> shapes_;  // every value's dims at this batch
  const DataType compute_;
  const bool refuse_reference_;
  std::optional<Error> reference_kernel_;  // the first layer that got a reference kernel
  WeightCache& weights_;
  Plan& plan_;
  std::map<std::string, Value> values_;
  std::map<std::string, std::vector<int>> readers_;  // value -> the ops that read it
  std::vector<BufferState> buffers_;
  std::vector<bool> skipped_;  // ops run inside an earlier one (a residual Add)
  const GraphOp* op_ = nullptr;
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
    if (m.buffer <= kConstantBase) {
      plan.memories.push_back(plan.constants[static_cast<std::size_t>(kConstantBase - m.buffer)]);
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

class OnednnBackend final : public GraphBackend {
 public:
  OnednnBackend(ModelGraph graph, DataType compute, const BackendOptions& options)
      : GraphBackend(std::move(graph), options.max_chunk, false, options.threads > 0 ? options.threads : g_onednn_threads.load()),
        compute_(compute),
        refuse_reference_(options.refuse_reference_kernels) {}

  std::string name() const override { return compute_ == DataType::bf16 ? "onednn-bf16" : "onednn"; }

 private:
  Result<const std::vector<Dims>*> prepare(std::int64_t batch) override {
    auto found = plans_.find(batch);
    if (found == plans_.end()) {
      auto plan = std::make_unique<Plan>();
      auto shapes = graph().shapes(batch);
      if (!shapes.ok()) return shapes.error();
      // oneDNN sizes a primitive's work split by the thread count when it is created.
      omp_set_num_threads(threads());
      try {
        Lowering lowering(graph(), std::move(shapes).value(), compute_, refuse_reference_, weights_, *plan);
        VIGIL_RETURN_IF_ERROR(lowering.build(batch));
        bind(*plan);
      } catch (const dnnl::error& e) {
        return fail(e.what());
      }
      found = plans_.emplace(batch, std::move(plan)).first;
    }
    return &found->second->output_dims;
  }

  void forget(std::int64_t batch) override { plans_.erase(batch); }

  // Items [first, first + batch) of the call, read and written in place.
  Status run_chunk(std::int64_t batch, const Tensor& input, std::int64_t first, std::vector<Tensor>& outputs, bool) override {
    Plan& plan = *plans_.at(batch);
    omp_set_num_threads(threads());
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
        return Error{ErrorCode::internal, graph().path + ": onednn: inference failed"};
      }
    }
    if (dnnl_stream_wait(plan.stream->get()) != dnnl_success) return Error{ErrorCode::internal, graph().path + ": onednn: inference failed"};
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

  DataType compute_;
  bool refuse_reference_;
  WeightCache weights_;
  std::map<std::int64_t, std::unique_ptr<Plan>> plans_;
};

}  // namespace

void set_onednn_threads(int threads) { g_onednn_threads.store(threads > 0 ? threads : 1); }

bool cpu_runs_bf16() {
  const auto isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
  return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

Result<std::unique_ptr<Backend>> create_onednn_backend(const BackendOptions& options) {
  auto graph = import_onnx_model(options.model_path, {options.output_names});
  if (!graph.ok()) return graph.error();
  if (options.precision == Precision::bf16 && !cpu_runs_bf16()) {
    return Error{ErrorCode::invalid_argument, options.model_path + ": onednn: precision bf16 needs a CPU with AVX512_BF16 (this one has not)"};
  }
  const DataType compute = options.precision == Precision::bf16 ? DataType::bf16 : DataType::f32;
  auto backend = std::make_unique<OnednnBackend>(std::move(graph).value(), compute, options);
  VIGIL_RETURN_IF_ERROR(backend->load());
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace vigil
