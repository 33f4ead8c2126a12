// Backend: runs one model on a batch.
//
// A Backend wraps one loaded model in one inference library: OpenCV DNN (the reference, runs
// any ONNX graph OpenCV can read), oneDNN or XNNPACK (vigil lowers the ONNX graph into their
// primitives; faster on the convolutional models vigil ships, see BENCHMARKS.md). It is not thread-safe: one caller at a time (the scheduler gives each model
// instance to one worker at a time). Inputs are batched along the first axis; outputs come
// back in the order of output_names(), resized as needed and reused between calls.
//
// Errors: a model that cannot be loaded or does not accept the input is invalid_argument
// (do not retry); exceptions from the library never escape.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/core/status.h"
#include "vigil/infer/tensor.h"

namespace vigil {

enum class BackendKind {
  automatic,  // oneDNN where it runs the graph on optimised kernels, else XNNPACK, else OpenCV DNN
  opencv,
  xnnpack,
  onednn,
  remote,     // a worker elsewhere runs it (vigil ingest: cluster/remote_backend.h); never in a config
};

std::string_view to_string(BackendKind kind);                  // "auto", "opencv", "xnnpack", "onednn"
Result<BackendKind> parse_backend_kind(std::string_view text);  // the same names

// The number format between a model's float32 input and outputs. bf16 (oneDNN on CPUs with
// AVX512_BF16) halves the memory traffic and doubles the multiply rate; see BENCHMARKS.md for
// its agreement with fp32.
enum class Precision { fp32, bf16 };

// Whether this CPU computes bf16 natively (AVX512_BF16 or AMX), as precision bf16 requires.
bool cpu_runs_bf16();

std::string_view to_string(Precision precision);              // "fp32", "bf16"
Result<Precision> parse_precision(std::string_view text);      // the same names

struct BackendOptions {
  std::string model_path;
  std::vector<std::string> output_names;  // empty: the model's graph outputs, in its order
  BackendKind kind = BackendKind::automatic;
  // XNNPACK: the largest batch one runtime call takes (larger batches are split). 0: measured
  // at load (batch 4 against four calls of 1: small convolutional models often run faster
  // image by image, their activations staying in cache).
  int max_chunk = 0;
  // bf16 is only run by oneDNN (automatic then means oneDNN, and fails where it cannot).
  Precision precision = Precision::fp32;
  // oneDNN: refuse the model (at load) when a layer would run on oneDNN's reference code, tens
  // of times slower than its JIT kernels (on CPUs without AVX-512 this oneDNN has none for
  // channels-last depthwise convolutions). automatic sets it, so such a CPU gets XNNPACK.
  bool refuse_reference_kernels = false;
  // Intra-op threads of this model instance (oneDNN, XNNPACK); 0: set_inference_threads's.
  // OpenCV DNN has only a process-wide count.
  int threads = 0;
  // automatic: where to append, per backend refused, why ("onednn: PATH: ... (Conv 'x')");
  // also logged at debug level.
  std::vector<std::string>* refusals = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Status infer(const Tensor& input, std::vector<Tensor>& outputs) = 0;
  virtual const std::vector<std::string>& output_names() const = 0;
  virtual std::string name() const = 0;  // e.g. "opencv-dnn"
};

// Sets the default intra-op threads of every inference library vigil uses (a model whose
// BackendOptions::threads is 0 takes it when it loads). OpenCV DNN has only this process-wide
// count; the engine and the harvest give oneDNN and XNNPACK theirs per model instance.
void set_inference_threads(int threads);

// Loads an ONNX model with the backend options.kind names. automatic tries oneDNN (refused
// where a layer would run on its reference code), then XNNPACK, then OpenCV DNN, and logs why
// each refused (a missing or unreadable file fails either way).
Result<std::unique_ptr<Backend>> create_backend(const BackendOptions& options);

// The maker of BackendKind::remote backends, set by the process that has a remote to send
// model calls to (`vigil ingest`) before it makes its models; an empty one removes it.
// Without one, create_backend refuses kind remote (failed_precondition).
using BackendFactory = std::function<Result<std::unique_ptr<Backend>>(const BackendOptions&)>;
void set_remote_backend_factory(BackendFactory factory);

// Loads an ONNX model into OpenCV's DNN module (CPU).
Result<std::unique_ptr<Backend>> create_opencv_backend(const BackendOptions& options);

// Lowers an ONNX model into a sequence of oneDNN primitives (CPU); invalid_argument names the
// first operator or shape it cannot lower, or says the CPU cannot run the precision.
Result<std::unique_ptr<Backend>> create_onednn_backend(const BackendOptions& options);

// Lowers an ONNX model into an XNNPACK subgraph (CPU); invalid_argument names the first
// operator or shape it cannot lower.
Result<std::unique_ptr<Backend>> create_xnnpack_backend(const BackendOptions& options);

}  // namespace vigil
