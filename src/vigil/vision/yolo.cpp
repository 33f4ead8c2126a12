#include "vigil/vision/yolo.h"

#include <algorithm>
#include <cmath>

#include "vigil/infer/onnx_model.h"
#include "vigil/vision/nms.h"

namespace vigil {

namespace {

// Ultralytics' trick for NMS per class in one pass: boxes of different classes are moved
// this far apart, so they never overlap.
constexpr float kClassOffset = 7680.0f;

}  // namespace

Yolo::Yolo(YoloConfig config, std::unique_ptr<Backend> backend, int size, int rows, int anchors)
    : config_(std::move(config)), backend_(std::move(backend)), size_(size), rows_(rows), anchors_(anchors) {
  if (config_.pose) {
    keypoints_ = (rows - 5) / 3;
  } else {
    classes_ = rows - 4;
  }
}

Result<std::unique_ptr<Yolo>> Yolo::create(const YoloConfig& config) {
  if (config.max_batch < 1) return Error{ErrorCode::invalid_argument, "max_batch must be at least 1"};
  if (!(config.score_threshold > 0 && config.score_threshold < 1)) {
    return Error{ErrorCode::invalid_argument, "score_threshold must be in (0, 1)"};
  }
  auto model = read_onnx_model(config.model_path);
  if (!model.ok()) return model.error();
  const char* kind = config.pose ? "an Ultralytics YOLO pose model" : "an Ultralytics YOLO detection model";
  const std::string expected = config.pose ? "1 input [N,3,S,S] and 1 output [N,5+3*keypoints,anchors]"
                                           : "1 input [N,3,S,S] and 1 output [N,4+classes,anchors]";
  const auto wrong = [&](const std::string& detail) {
    return Error{ErrorCode::invalid_argument, config.model_path + ": not " + kind + ": expected " + expected +
                                                  "; the file has " + signature_string(*model) +
                                                  (detail.empty() ? "" : " (" + detail + ")")};
  };
  const auto& in = model->inputs[0].dims;
  if (model->inputs.size() != 1 || in.size() != 4 || in[1] != 3) return wrong("");
  if (model->outputs.size() != 1 || model->outputs[0].dims.size() != 3) return wrong("");
  int size = config.input_size;
  if (in[2] > 0 && in[3] > 0) {
    if (in[2] != in[3]) return wrong("the input is not square");
    if (size != 0 && size != in[2]) {
      return wrong("input_size " + std::to_string(size) + " does not match the file's " + std::to_string(in[2]));
    }
    size = static_cast<int>(in[2]);
  }
  if (size <= 0 || size % 32 != 0) return wrong("set input_size to a multiple of 32");
  const std::int64_t anchors = (size / 8) * (size / 8) + (size / 16) * (size / 16) + (size / 32) * (size / 32);
  const auto& out = model->outputs[0].dims;
  if (out[2] > 0 && out[2] != anchors) {
    return wrong(std::to_string(out[2]) + " anchors where a " + std::to_string(size) + "x" + std::to_string(size) +
                 " input has " + std::to_string(anchors));
  }
  const std::int64_t rows = out[1];
  if (rows > 0 && (config.pose ? (rows < 8 || (rows - 5) % 3 != 0) : rows < 5)) return wrong("");
  if (in[0] > 0 && config.max_batch > in[0]) {
    return wrong("the file takes a batch of " + std::to_string(in[0]) + "; export it with dynamic=True to batch");
  }
  auto backend = create_backend({config.model_path, {model->outputs[0].name}, config.backend, 0, config.precision, false, config.threads});
  if (!backend.ok()) return backend.error();
  std::unique_ptr<Yolo> yolo(new Yolo(config, std::move(backend).value(), size, static_cast<int>(rows), static_cast<int>(anchors)));
  // One black frame through the model: the real output shape must be what the file declares.
  Tensor& probe = yolo->input_.tensor();
  probe.reshape({1, 3, size, size});
  std::fill(probe.data(), probe.data() + probe.size(), 0.0f);
  if (Status s = yolo->backend_->infer(probe, yolo->outputs_); !s.ok()) return wrong(s.error().message);
  const Tensor& o = yolo->outputs_.at(0);
  if (o.rank() != 3 || o.dim(0) != 1 || o.dim(2) != anchors || (rows > 0 && o.dim(1) != rows)) {
    return wrong("it computes " + o.shape_string() + " for one image");
  }
  yolo->rows_ = static_cast<int>(o.dim(1));
  if (config.pose ? (yolo->rows_ < 8 || (yolo->rows_ - 5) % 3 != 0) : yolo->rows_ < 5) return wrong("");
  yolo->keypoints_ = config.pose ? (yolo->rows_ - 5) / 3 : 0;
  yolo->classes_ = config.pose ? 1 : yolo->rows_ - 4;
  if (yolo->keypoints_ > Detection::kMaxKeypoints) {
    return wrong(std::to_string(yolo->keypoints_) + " keypoints; vigil keeps at most " + std::to_string(Detection::kMaxKeypoints));
  }
  return yolo;
}

void Yolo::decode(const Tensor& output, int item, const LetterboxTransform& transform, int frame_width, int frame_height,
                  Detections& out) {
  const float* base = output.item(item);
  const auto A = static_cast<std::size_t>(anchors_);
  const auto row = [&](int r) { return base + static_cast<std::size_t>(r) * A; };
  candidates_.clear();
  for (std::size_t a = 0; a < A; ++a) {
    int best = 0;
    float score = row(4)[a];
    if (!config_.pose) {
      for (int c = 1; c < classes_; ++c) {
        const float s = row(4 + c)[a];
        if (s > score) {
          score = s;
          best = c;
        }
      }
    }
    if (!(score > config_.score_threshold)) continue;
    const float cx = row(0)[a], cy = row(1)[a], w = row(2)[a], h = row(3)[a];
    Detection d;
    d.score = score;
    d.class_id = best;
    const float offset = config_.pose ? 0.0f : kClassOffset * static_cast<float>(best);
    d.bbox = {cx - w / 2 + offset, cy - h / 2 + offset, cx + w / 2 + offset, cy + h / 2 + offset};
    d.keypoint_count = keypoints_;
    for (int k = 0; k < keypoints_; ++k) {
      d.keypoints[k] = {row(5 + 3 * k)[a], row(6 + 3 * k)[a]};
      d.keypoint_scores[k] = row(7 + 3 * k)[a];
    }
    candidates_.push_back(d);
  }
  non_max_suppression(candidates_, config_.nms_iou, NmsMode::hard, kept_, nms_scratch_);
  out.clear();
  for (Detection d : kept_) {
    const float offset = config_.pose ? 0.0f : kClassOffset * static_cast<float>(d.class_id);
    d.bbox = {d.bbox.x1 - offset, d.bbox.y1 - offset, d.bbox.x2 - offset, d.bbox.y2 - offset};
    detection_to_frame(d, transform, frame_width, frame_height);
    out.push_back(d);
  }
}

Status Yolo::detect(std::span<const Image* const> images, std::vector<Detections>& results) {
  results.resize(images.size());
  const auto max_batch = static_cast<std::size_t>(config_.max_batch);
  for (std::size_t start = 0; start < images.size(); start += max_batch) {
    const std::size_t n = std::min(max_batch, images.size() - start);
    VIGIL_RETURN_IF_ERROR(input_.fill(images, start, n, size_, InputRange::zero_to_one));
    VIGIL_RETURN_IF_ERROR(backend_->infer(input_.tensor(), outputs_));
    if (outputs_.size() != 1 || outputs_[0].rank() != 3 || outputs_[0].dim(0) != static_cast<std::int64_t>(n)) {
      return Error{ErrorCode::internal, config_.model_path + ": output " +
                                            (outputs_.empty() ? std::string("[]") : outputs_[0].shape_string()) +
                                            " for a batch of " + std::to_string(n)};
    }
    for (std::size_t i = 0; i < n; ++i) {
      const Image& image = *images[start + i];
      decode(outputs_[0], static_cast<int>(i), input_.transform(i), image.width, image.height, results[start + i]);
    }
  }
  return {};
}

}  // namespace vigil
