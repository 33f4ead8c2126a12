#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <span>
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/dnn.hpp>
#include <onnx/onnx_pb.h>

#include "vigil/infer/backend.h"
#include "vigil/infer/backend_threads.h"

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

// OpenCV DNN re-plans a network (layer shapes, buffers) whenever the input shape changes,
// which costs more than a small model's inference. Batches from the scheduler vary in
// size, so the backend keeps one network per batch size it has seen, all loaded from the
// same bytes: each keeps its plan, and steady state allocates nothing.
class OpenCvBackend final : public Backend {
 public:
  OpenCvBackend(std::vector<char> model_bytes, std::vector<std::string> outputs)
      : model_bytes_(std::move(model_bytes)), output_names_(std::move(outputs)) {}

  Result<cv::dnn::Net*> net_for(std::int64_t batch) {
    auto it = nets_.find(batch);
    if (it != nets_.end()) return &it->second;
    cv::dnn::Net net = cv::dnn::readNetFromONNX(model_bytes_.data(), model_bytes_.size());
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return &nets_.emplace(batch, std::move(net)).first->second;
  }

  Status infer(const Tensor& input, std::vector<Tensor>& outputs) override {
    try {
      auto net = net_for(input.rank() > 0 ? input.dim(0) : 1);
      if (!net.ok()) return net.error();
      std::vector<int> dims(input.shape().begin(), input.shape().end());
      // Wraps the caller's buffer: no copy of the batch.
      cv::Mat blob(static_cast<int>(dims.size()), dims.data(), CV_32F, const_cast<float*>(input.data()));
      (*net)->setInput(blob);
      (*net)->forward(results_, output_names_);
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
  std::vector<char> model_bytes_;
  std::vector<std::string> output_names_;
  std::map<std::int64_t, cv::dnn::Net> nets_;
  std::vector<cv::Mat> results_;
};

// OpenCV 4.6 reads Clip only in its opset-6 form (bounds as attributes); from opset 11 the
// bounds are inputs, as tools/tfjs_graph_onnx.py writes Relu6. Rewrites each Clip whose
// bounds are constant initializers into the attribute form (the same computation); other
// models come back unchanged.
void clip_bounds_as_attributes(std::vector<char>& bytes) {
  onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return;
  std::map<std::string, float> scalars;
  for (const auto& t : model.graph().initializer()) {
    std::int64_t count = 1;
    for (auto d : t.dims()) count *= d;
    if (t.data_type() != onnx::TensorProto::FLOAT || count != 1) continue;
    if (t.float_data_size() == 1) {
      scalars[t.name()] = t.float_data(0);
    } else if (t.raw_data().size() == sizeof(float)) {
      float v = 0;
      std::memcpy(&v, t.raw_data().data(), sizeof v);
      scalars[t.name()] = v;
    }
  }
  bool changed = false;
  for (auto& node : *model.mutable_graph()->mutable_node()) {
    if (node.op_type() != "Clip" || node.input_size() < 2) continue;
    const char* names[] = {"min", "max"};
    bool constant = true;
    for (int i = 1; i < node.input_size(); ++i) constant = constant && (node.input(i).empty() || scalars.count(node.input(i)) > 0);
    if (!constant) continue;
    for (int i = 1; i < node.input_size(); ++i) {
      if (node.input(i).empty()) continue;
      auto* a = node.add_attribute();
      a->set_name(names[i - 1]);
      a->set_type(onnx::AttributeProto::FLOAT);
      a->set_f(scalars[node.input(i)]);
    }
    node.mutable_input()->DeleteSubrange(1, node.input_size() - 1);
    changed = true;
  }
  if (!changed) return;
  std::string out;
  if (!model.SerializeToString(&out)) return;
  bytes.assign(out.begin(), out.end());
}

}  // namespace

void set_opencv_threads(int threads) { cv::setNumThreads(threads > 0 ? threads : 1); }

Result<std::unique_ptr<Backend>> create_opencv_backend(const BackendOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(options.model_path, ec)) {
    return Error{ErrorCode::not_found, options.model_path + ": model file not found"};
  }
  // Errors come back as values; OpenCV's own log lines would only repeat them.
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  std::ifstream in(options.model_path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) return Error{ErrorCode::invalid_argument, options.model_path + ": empty or unreadable model file"};
  clip_bounds_as_attributes(bytes);
  std::vector<std::string> outputs = options.output_names;
  try {
    cv::dnn::Net net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
    if (net.empty()) return Error{ErrorCode::invalid_argument, options.model_path + ": empty network"};
    if (outputs.empty()) outputs = net.getUnconnectedOutLayersNames();
  } catch (const cv::Exception& e) {
    return Error{ErrorCode::invalid_argument, options.model_path + ": not a loadable ONNX model (" + one_line(e.err) + ")"};
  }
  return std::unique_ptr<Backend>(new OpenCvBackend(std::move(bytes), std::move(outputs)));
}

}  // namespace vigil
