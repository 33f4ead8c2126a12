#include "vigil/vision/scrfd.h"

#include <algorithm>

#include "vigil/infer/onnx_model.h"
#include "vigil/vision/nms.h"

namespace vigil {

namespace {

std::int64_t anchors_at(int size, int stride) {
  const std::int64_t cells = size / stride;
  return cells * cells * Scrfd::kAnchorsPerCell;
}

}  // namespace

Scrfd::Scrfd(ScrfdConfig config, std::unique_ptr<Backend> backend, int size, bool keypoints, bool batch_axis)
    : config_(std::move(config)), backend_(std::move(backend)), size_(size), keypoints_(keypoints), batch_axis_(batch_axis) {}

Result<std::unique_ptr<Scrfd>> Scrfd::create(const ScrfdConfig& config) {
  if (config.max_batch < 1) return Error{ErrorCode::invalid_argument, "max_batch must be at least 1"};
  if (!(config.score_threshold > 0 && config.score_threshold < 1)) {
    return Error{ErrorCode::invalid_argument, "score_threshold must be in (0, 1)"};
  }
  auto model = read_onnx_model(config.model_path);
  if (!model.ok()) return model.error();
  const std::string has = signature_string(*model);
  const auto wrong = [&](const std::string& detail) {
    return Error{ErrorCode::invalid_argument,
                 config.model_path + ": not an InsightFace SCRFD model: expected 1 input [N,3,S,S] and 6 or 9 outputs " +
                     "(scores [A,1], boxes [A,4], keypoints [A,10] at strides 8, 16, 32, with or without a batch axis); " +
                     "the file has " + has + (detail.empty() ? "" : " (" + detail + ")")};
  };
  const auto& in = model->inputs[0].dims;
  if (model->inputs.size() != 1 || in.size() != 4 || in[1] != 3) return wrong("");
  const std::size_t outputs = model->outputs.size();
  if (outputs != 6 && outputs != 9) return wrong("");
  int size = config.input_size;
  if (in[2] > 0 && in[3] > 0) {
    if (in[2] != in[3]) return wrong("the input is not square");
    size = static_cast<int>(in[2]);
  }
  if (size <= 0 || size % 32 != 0) return wrong("input_size must be a multiple of 32");
  if (in[0] > 0 && config.max_batch > in[0]) {
    return wrong("the file takes a batch of " + std::to_string(in[0]) + "; set max_batch to " + std::to_string(in[0]));
  }
  std::vector<std::string> names;
  for (const auto& o : model->outputs) names.push_back(o.name);
  auto backend = create_backend({config.model_path, names, config.backend, 0, config.precision, false, config.threads});
  if (!backend.ok()) return backend.error();
  const bool keypoints = outputs == 9;
  // The batch axis shows in the computed shapes: one black image through the model.
  std::unique_ptr<Scrfd> scrfd(new Scrfd(config, std::move(backend).value(), size, keypoints, false));
  Tensor& probe = scrfd->input_.tensor();
  probe.reshape({1, 3, size, size});
  std::fill(probe.data(), probe.data() + probe.size(), 0.0f);
  if (Status s = scrfd->backend_->infer(probe, scrfd->outputs_); !s.ok()) return wrong(s.error().message);
  const std::int64_t widths[3] = {1, 4, 10};
  bool batch_axis = false;
  for (std::size_t i = 0; i < outputs; ++i) {
    const Tensor& t = scrfd->outputs_[i];
    const std::int64_t want = anchors_at(size, kStrides[i % 3]);
    const std::int64_t width = widths[i / 3];
    const bool flat = t.rank() == 2 && t.dim(0) == want && t.dim(1) == width;
    const bool batched = t.rank() == 3 && t.dim(0) == 1 && t.dim(1) == want && t.dim(2) == width;
    if (!flat && !batched) {
      return wrong("output " + std::to_string(i) + " computes " + t.shape_string() + " where [" + std::to_string(want) + "," +
                   std::to_string(width) + "] was expected for a " + std::to_string(size) + "x" + std::to_string(size) +
                   " input");
    }
    if (i == 0) batch_axis = batched;
    if (batched != batch_axis) return wrong("some outputs have a batch axis and some do not");
  }
  scrfd->batch_axis_ = batch_axis;
  return scrfd;
}

void Scrfd::decode(int item, const LetterboxTransform& transform, int frame_width, int frame_height, Detections& out) {
  candidates_.clear();
  for (int level = 0; level < 3; ++level) {
    const int stride = kStrides[level];
    const int cells = size_ / stride;
    const std::int64_t count = anchors_at(size_, stride);
    // Without a batch axis the items follow each other along the anchor axis.
    const float* scores = outputs_[static_cast<std::size_t>(level)].data() + item * count;
    const float* boxes = outputs_[static_cast<std::size_t>(3 + level)].data() + item * count * 4;
    const float* kps = keypoints_ ? outputs_[static_cast<std::size_t>(6 + level)].data() + item * count * 10 : nullptr;
    const auto s = static_cast<float>(stride);
    for (std::int64_t a = 0; a < count; ++a) {
      if (!(scores[a] >= config_.score_threshold)) continue;
      const std::int64_t cell = a / kAnchorsPerCell;
      const float cx = static_cast<float>(cell % cells) * s;
      const float cy = static_cast<float>(cell / cells) * s;
      const float* b = boxes + a * 4;
      Detection d;
      d.score = scores[a];
      d.bbox = {cx - b[0] * s, cy - b[1] * s, cx + b[2] * s, cy + b[3] * s};
      if (kps != nullptr) {
        const float* k = kps + a * 10;
        const auto point = [&](int i) { return Point2{cx + k[2 * i] * s, cy + k[2 * i + 1] * s}; };
        const Point2 mouth_right = point(3), mouth_left = point(4);
        d.keypoint_count = 6;
        d.keypoints[0] = point(0);
        d.keypoints[1] = point(1);
        d.keypoints[2] = point(2);
        d.keypoints[3] = {(mouth_right.x + mouth_left.x) / 2, (mouth_right.y + mouth_left.y) / 2};
        d.keypoints[4] = mouth_right;
        d.keypoints[5] = mouth_left;
      }
      candidates_.push_back(d);
    }
  }
  non_max_suppression(candidates_, config_.nms_iou, NmsMode::hard, kept_, nms_scratch_);
  out.clear();
  for (Detection d : kept_) {
    detection_to_frame(d, transform, frame_width, frame_height);
    out.push_back(d);
  }
}

Status Scrfd::detect(std::span<const Image* const> images, std::vector<Detections>& results) {
  results.resize(images.size());
  const auto max_batch = static_cast<std::size_t>(config_.max_batch);
  for (std::size_t start = 0; start < images.size(); start += max_batch) {
    const std::size_t n = std::min(max_batch, images.size() - start);
    VIGIL_RETURN_IF_ERROR(input_.fill(images, start, n, size_, InputRange::insightface));
    VIGIL_RETURN_IF_ERROR(backend_->infer(input_.tensor(), outputs_));
    const std::size_t expected = keypoints_ ? 9 : 6;
    if (outputs_.size() != expected || outputs_[0].size() != static_cast<std::size_t>(anchors_at(size_, 8)) * n) {
      return Error{ErrorCode::internal, config_.model_path + ": outputs do not follow a batch of " + std::to_string(n)};
    }
    for (std::size_t i = 0; i < n; ++i) {
      const Image& image = *images[start + i];
      decode(static_cast<int>(i), input_.transform(i), image.width, image.height, results[start + i]);
    }
  }
  return {};
}

}  // namespace vigil
