#include "vigil/vision/blazeface.h"

#include <algorithm>
#include <cmath>

namespace vigil {

const std::vector<std::string>& blazeface_output_names() {
  static const std::vector<std::string> names = {"Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"};
  return names;
}

std::vector<Anchor> BlazeFace::make_anchors() {
  // MediaPipe SsdAnchorsCalculator for BlazeFace: grids of 16x16 and 8x8 cells (the model's
  // two output strides), 2 and 6 anchors per cell, fixed size, centres at cell middles.
  std::vector<Anchor> anchors;
  anchors.reserve(kAnchors);
  const struct {
    int grid;
    int per_cell;
  } layers[] = {{16, 2}, {8, 6}};
  for (const auto& layer : layers) {
    for (int y = 0; y < layer.grid; ++y) {
      for (int x = 0; x < layer.grid; ++x) {
        for (int k = 0; k < layer.per_cell; ++k) {
          anchors.push_back({(x + 0.5f) / layer.grid, (y + 0.5f) / layer.grid});
        }
      }
    }
  }
  return anchors;
}

BlazeFace::BlazeFace(BlazeFaceConfig config, std::unique_ptr<Backend> backend)
    : config_(std::move(config)), backend_(std::move(backend)), anchors_(make_anchors()) {}

Result<std::unique_ptr<BlazeFace>> BlazeFace::create(const BlazeFaceConfig& config) {
  auto backend = create_backend({config.model_path, blazeface_output_names(), config.backend, 0, config.precision, false, config.threads});
  if (!backend.ok()) return backend.error();
  return create(config, std::move(backend).value());
}

Result<std::unique_ptr<BlazeFace>> BlazeFace::create(const BlazeFaceConfig& config, std::unique_ptr<Backend> backend) {
  if (config.input_size != 128 && config.input_size != 256) {
    return Error{ErrorCode::invalid_argument, "BlazeFace input_size must be 128 or 256"};
  }
  if (config.max_batch < 1) return Error{ErrorCode::invalid_argument, "max_batch must be at least 1"};
  if (!(config.score_threshold > 0 && config.score_threshold < 1)) {
    return Error{ErrorCode::invalid_argument, "score_threshold must be in (0, 1)"};
  }
  std::unique_ptr<BlazeFace> detector(new BlazeFace(config, std::move(backend)));
  VIGIL_RETURN_IF_ERROR(detector->check_model());
  return detector;
}

Status BlazeFace::check_model() {
  // One zero image through the model: a wrong file, the wrong input size, or a batch-1
  // export asked to batch fails here, at start-up, with a clear message.
  const int n = std::min(config_.max_batch, 2);
  input_.reshape({n, config_.input_size, config_.input_size, 3});
  std::fill(input_.data(), input_.data() + input_.size(), 0.0f);
  Status status = run_model(input_);
  calls_ = items_ = 0;
  if (!status.ok()) {
    return Error{ErrorCode::invalid_argument,
                 config_.model_path + ": not a BlazeFace " + std::to_string(config_.input_size) + "x" +
                     std::to_string(config_.input_size) + " model" +
                     (n > 1 ? " with a dynamic batch (make one with tools/blazeface_dynamic_batch.py)" : "") + " (" +
                     status.error().message + ")"};
  }
  const std::size_t expected[] = {512, 384, 512 * kRegressors, 384 * kRegressors};
  const std::string not_blazeface = config_.model_path + ": not a BlazeFace " + std::to_string(config_.input_size) + "x" +
                                    std::to_string(config_.input_size) + " model";
  if (outputs_.size() != 4) return Error{ErrorCode::invalid_argument, not_blazeface + " (expected 4 outputs)"};
  for (int i = 0; i < 4; ++i) {
    if (outputs_[i].dim(0) != n || outputs_[i].item_size() != expected[i]) {
      return Error{ErrorCode::invalid_argument, not_blazeface + " (output " + std::to_string(i) + " has shape " +
                                                    outputs_[i].shape_string() + " for a batch of " + std::to_string(n) + ")"};
    }
  }
  return {};
}

Status BlazeFace::run_model(Tensor& input) {
  VIGIL_RETURN_IF_ERROR(backend_->infer(input, outputs_));
  ++calls_;
  items_ += static_cast<std::uint64_t>(input.dim(0));
  return {};
}

LetterboxTransform BlazeFace::preprocess(const Image& image, float* slot) {
  return letterbox_rgb(image, config_.input_size, config_.range, slot, scratch_);
}

void BlazeFace::decode(int item, const LetterboxTransform& transform, int frame_width, int frame_height,
                       Detections& out) {
  const float size = static_cast<float>(config_.input_size);
  // sigmoid(logit) > t  <=>  logit > log(t / (1 - t)): no exp per anchor.
  const float logit_threshold = std::log(config_.score_threshold / (1.0f - config_.score_threshold));
  candidates_.clear();
  int anchor_index = 0;
  for (int layer = 0; layer < 2; ++layer) {
    const Tensor& scores = outputs_[layer];
    const Tensor& regressors = outputs_[2 + layer];
    const float* score = scores.item(item);
    const float* reg = regressors.item(item);
    const int count = static_cast<int>(scores.item_size());
    for (int i = 0; i < count; ++i, ++anchor_index) {
      const float logit = std::clamp(score[i], -100.0f, 100.0f);
      if (logit <= logit_threshold) continue;
      const float* r = reg + static_cast<std::size_t>(i) * kRegressors;
      const Anchor& a = anchors_[anchor_index];
      const float cx = r[0] + a.x * size;
      const float cy = r[1] + a.y * size;
      const float half_w = r[2] * 0.5f;
      const float half_h = r[3] * 0.5f;
      Detection d;
      d.score = 1.0f / (1.0f + std::exp(-logit));
      const Point2 p1 = transform.to_frame(cx - half_w, cy - half_h);
      const Point2 p2 = transform.to_frame(cx + half_w, cy + half_h);
      d.bbox = {p1.x, p1.y, p2.x, p2.y};
      d.keypoint_count = kKeypoints;
      for (int k = 0; k < kKeypoints; ++k) {
        d.keypoints[k] = transform.to_frame(r[4 + 2 * k] + a.x * size, r[5 + 2 * k] + a.y * size);
      }
      candidates_.push_back(d);
    }
  }
  non_max_suppression(candidates_, config_.nms_iou, config_.nms, out, nms_scratch_);
  const float max_x = static_cast<float>(frame_width);
  const float max_y = static_cast<float>(frame_height);
  for (Detection& d : out) {
    d.bbox = {std::clamp(d.bbox.x1, 0.0f, max_x), std::clamp(d.bbox.y1, 0.0f, max_y), std::clamp(d.bbox.x2, 0.0f, max_x),
              std::clamp(d.bbox.y2, 0.0f, max_y)};
  }
}

Status BlazeFace::detect(std::span<const Image* const> images, std::vector<Detections>& results) {
  results.resize(images.size());
  const int size = config_.input_size;
  for (std::size_t begin = 0; begin < images.size(); begin += static_cast<std::size_t>(config_.max_batch)) {
    const std::size_t n = std::min(images.size() - begin, static_cast<std::size_t>(config_.max_batch));
    input_.reshape({static_cast<std::int64_t>(n), size, size, 3});
    transforms_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const Image& image = *images[begin + i];
      if (image.empty()) return Error{ErrorCode::invalid_argument, "empty image in batch"};
      transforms_[i] = preprocess(image, input_.item(static_cast<std::int64_t>(i)));
    }
    VIGIL_RETURN_IF_ERROR(run_model(input_));
    for (std::size_t i = 0; i < n; ++i) {
      const Image& image = *images[begin + i];
      decode(static_cast<int>(i), transforms_[i], image.width, image.height, results[begin + i]);
    }
  }
  return {};
}

}  // namespace vigil
