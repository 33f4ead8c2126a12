// ModelGraph: an ONNX model as vigil's CPU backends lower it, made by one importer.
//
//   read_onnx_model ─▶ checks ─▶ typed ops ─▶ constant folding ─▶ fusion ─▶ shapes, liveness
//
// The importer turns each ONNX node into a GraphOp of a closed set of kinds with its
// attributes checked and normalised once (pads resolved from auto_pad, Flatten as a reshape,
// Gemm's alpha, beta and transB folded into its weights, Dropout as identity), evaluates what
// depends on constants only, and fuses what every backend wants fused:
//   - BatchNormalization after a convolution: into its weights and bias;
//   - an Add of one value per output channel after a convolution: into its bias;
//   - a zero Pad of height and width before a convolution: into its padding;
//   - an activation (Relu, Clip, LeakyRelu, Sigmoid, Elu, HardSwish) after a convolution, a
//     fully connected layer or an elementwise op: into that op (`activation`).
// A fusion happens only where the intermediate value has one reader and is not an output.
// What is left for a backend is only its lowering of each op kind: a kind or shape it cannot
// lower is its own error, naming the op (op_type and name) for `backend: auto`'s log.
//
// Shapes: every dim after the batch is fixed (checked); shapes(batch) gives every value's
// dims at a batch size (Reshape targets of -1, 0, or an exporter's fixed batch of 1, follow it).
// Liveness: last_use[value] is the index of the last op that reads it (outputs: kOutput).
//
// Threading: a ModelGraph is immutable once imported; one may be shared by any number of
// backends and threads.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "vigil/core/status.h"
#include "vigil/infer/onnx_model.h"

namespace vigil {

using Dims = std::vector<std::int64_t>;

enum class OpKind {
  conv,                 // inputs: x; weights [O, I/group, kh, kw] and bias [O] are constants
  fully_connected,      // inputs: x [.., K]; weights [N, K] and bias [N] are constants
  binary,               // inputs: a, b (numpy broadcasting; either may be a constant)
  activation,           // inputs: x
  max_pool,             // inputs: x (NCHW)
  average_pool,         // inputs: x (NCHW)
  global_average_pool,  // inputs: x (NCHW) -> [N, C, 1, 1]
  batch_norm,           // inputs: x (NCHW); per channel y = x * scale + shift (constants)
  pad,                  // inputs: x; constant pads
  transpose,            // inputs: x
  reshape,              // inputs: x (Reshape and Flatten)
  prelu,                // inputs: x; slope per channel (constant)
  softmax,              // inputs: x; over `axis`
  resize,               // inputs: x (NCHW); bilinear, height and width times `scales`
  identity,             // inputs: x (Identity, Dropout)
};
std::string_view to_string(OpKind kind);

enum class BinaryOp { add, sub, mul, div, max, min };

// Resize's coordinate_transformation_mode (TensorFlow: half_pixel_centers, its default
// legacy mode, align_corners).
enum class ResizeMode { half_pixel, asymmetric, align_corners };

struct Activation {
  enum Kind { none, relu, leaky_relu, sigmoid, elu, hardswish, clip } kind = none;
  float alpha = 0;  // leaky_relu, elu: the slope or scale; clip: the minimum
  float beta = 0;   // clip: the maximum
};

// A convolution's or pooling's window over height and width.
struct Window {
  std::array<std::int64_t, 2> kernel{1, 1};
  std::array<std::int64_t, 2> stride{1, 1};
  std::array<std::int64_t, 2> dilation{1, 1};
  std::array<std::int64_t, 4> pads{0, 0, 0, 0};  // top, left, bottom, right
  bool ceil_mode = false;                        // pooling
  bool count_include_pad = false;                // average pooling
  // Output size along axis i (0: height, 1: width) for an input of `in`.
  std::int64_t output(std::int64_t in, int i) const;
};

struct GraphOp {
  OpKind kind = OpKind::identity;
  std::string op_type;  // the ONNX operator it came from, for errors
  std::string name;     // the ONNX node's name, for errors
  std::vector<std::string> inputs;  // computed values first, then this kind's constants (see OpKind)
  std::string output;
  Activation activation;  // activation: what it computes; conv, fully_connected, binary: fused after
  BinaryOp binary = BinaryOp::add;
  Window window;               // conv, pools
  std::int64_t group = 1;      // conv
  std::vector<std::int64_t> perm;   // transpose
  std::vector<std::int64_t> shape;  // reshape target (0: keep that dim, -1: the rest)
  std::vector<std::int64_t> pads;   // pad: begins of every axis, then ends
  float pad_value = 0;
  std::int64_t axis = -1;      // softmax, normalised to >= 0
  ResizeMode resize = ResizeMode::half_pixel;  // resize
  std::array<float, 2> scales{1, 1};           // resize: height, width

  // "Conv 'name'", for errors.
  std::string describe() const;
};

struct ModelGraph {
  static constexpr int kOutput = std::numeric_limits<int>::max();

  std::string path;
  std::string input;   // the graph's one input
  Dims input_dims;     // dims[0] < 0: any batch
  std::vector<std::string> outputs;  // in the caller's order
  std::vector<GraphOp> ops;          // topological order
  std::map<std::string, OnnxTensor> constants;
  std::map<std::string, int> last_use;  // value -> index of the last op reading it (kOutput for outputs)
  std::map<std::string, int> readers;   // value -> how many ops read it (outputs count one more)

  bool dynamic_batch() const { return input_dims[0] < 0; }
  const OnnxTensor* constant(const std::string& name) const;
  // Every computed value's dims at `batch` (the input's batch axis set to it).
  Result<std::map<std::string, Dims>> shapes(std::int64_t batch) const;
  // The model's input with this batch, for errors and checks.
  std::int64_t input_item_size() const;
};

struct ImportOptions {
  std::vector<std::string> outputs;  // empty: the model's graph outputs
  bool fuse = true;                  // false: each ONNX node stays its own op (tests compare both)
};

// Reads and imports an ONNX file. not_found when missing; invalid_argument naming the node for
// anything the importer does not take (an operator outside OpKind, a non-constant weight, a
// shape that does not fit), and for a model with other than one input or with a variable
// size after the batch axis.
Result<ModelGraph> import_onnx_model(const std::string& path, const ImportOptions& options = {});

// Product of dims[from, to).
std::int64_t product(const Dims& dims, std::size_t from = 0, std::size_t to = std::numeric_limits<std::size_t>::max());

}  // namespace vigil
