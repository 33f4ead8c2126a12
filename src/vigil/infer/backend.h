// Backend: runs one model on a batch.
//
// A Backend wraps one loaded model in one inference library (OpenCV DNN today, LibTorch
// later). It is not thread-safe: one caller at a time (the scheduler gives each model
// instance to one worker at a time). Inputs are batched along the first axis; outputs come
// back in the order of output_names(), resized as needed and reused between calls.
//
// Errors: a model that cannot be loaded or does not accept the input is invalid_argument
// (do not retry); exceptions from the library never escape.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vigil/core/status.h"
#include "vigil/infer/tensor.h"

namespace vigil {

struct BackendOptions {
  std::string model_path;
  std::vector<std::string> output_names;  // empty: the model's unconnected outputs, in its order
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Status infer(const Tensor& input, std::vector<Tensor>& outputs) = 0;
  virtual const std::vector<std::string>& output_names() const = 0;
  virtual std::string name() const = 0;  // e.g. "opencv-dnn"
};

// Sets the intra-op threads of every inference library vigil uses. Process-wide: main calls
// it once from the CPU budget.
void set_inference_threads(int threads);

// Loads an ONNX model into OpenCV's DNN module (CPU).
Result<std::unique_ptr<Backend>> create_opencv_backend(const BackendOptions& options);

}  // namespace vigil
