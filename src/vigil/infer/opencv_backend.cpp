#include <array>
#include <filesystem>
#include <span>
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/dnn.hpp>

#include "vigil/infer/backend.h"

namespace vigil {

namespace {

// OpenCV's messages span several lines; errors here are one line.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

class OpenCvBackend final : public Backend {
 public:
  OpenCvBackend(cv::dnn::Net net, std::vector<std::string> outputs)
      : net_(std::move(net)), output_names_(std::move(outputs)) {}

  Status infer(const Tensor& input, std::vector<Tensor>& outputs) override {
    try {
      std::vector<int> dims(input.shape().begin(), input.shape().end());
      // Wraps the caller's buffer: no copy of the batch.
      cv::Mat blob(static_cast<int>(dims.size()), dims.data(), CV_32F, const_cast<float*>(input.data()));
      net_.setInput(blob);
      net_.forward(results_, output_names_);
      outputs.resize(results_.size());
      for (std::size_t i = 0; i < results_.size(); ++i) {
        const cv::Mat& m = results_[i];
        std::array<std::int64_t, 32> shape{};  // OpenCV allows at most 32 dims
        std::copy_n(m.size.p, m.dims, shape.begin());
        outputs[i].reshape(std::span<const std::int64_t>(shape.data(), static_cast<std::size_t>(m.dims)));
        const cv::Mat contiguous = m.isContinuous() ? m : m.clone();
        std::copy_n(contiguous.ptr<float>(), outputs[i].size(), outputs[i].data());
      }
    } catch (const cv::Exception& e) {
      return Error{ErrorCode::invalid_argument, "opencv-dnn inference on " + input.shape_string() + " failed: " + one_line(e.msg)};
    }
    return {};
  }

  const std::vector<std::string>& output_names() const override { return output_names_; }
  std::string name() const override { return "opencv-dnn"; }

 private:
  cv::dnn::Net net_;
  std::vector<std::string> output_names_;
  std::vector<cv::Mat> results_;
};

}  // namespace

void set_inference_threads(int threads) { cv::setNumThreads(threads > 0 ? threads : 1); }

Result<std::unique_ptr<Backend>> create_opencv_backend(const BackendOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(options.model_path, ec)) {
    return Error{ErrorCode::not_found, options.model_path + ": model file not found"};
  }
  // Errors come back as values; OpenCV's own log lines would only repeat them.
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  cv::dnn::Net net;
  try {
    net = cv::dnn::readNetFromONNX(options.model_path);
  } catch (const cv::Exception& e) {
    return Error{ErrorCode::invalid_argument, options.model_path + ": not a loadable ONNX model (" + one_line(e.err) + ")"};
  }
  if (net.empty()) return Error{ErrorCode::invalid_argument, options.model_path + ": empty network"};
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  std::vector<std::string> outputs = options.output_names;
  if (outputs.empty()) outputs = net.getUnconnectedOutLayersNames();
  return std::unique_ptr<Backend>(new OpenCvBackend(std::move(net), std::move(outputs)));
}

}  // namespace vigil
