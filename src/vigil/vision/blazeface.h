// BlazeFace: MediaPipe's short-range (128x128, "front") and full-range (256x256, "back")
// face detectors, pre-processing, batched inference and post-processing.
//
// Pre-processing letterboxes each frame to the model's square input as RGB in [-1, 1]
// (x / 127.5 - 1, as MediaPipe feeds it). Post-processing decodes 896 anchors (a 16x16 grid
// with 2 anchors per cell, then an 8x8 grid with 6 per cell, unit-size anchors centred at
// (i + 0.5) / grid), keeps scores over the threshold, and merges overlaps with weighted
// NMS. Boxes and the 6 keypoints come back in source-frame pixels, clipped to the frame.
//
// Batching needs the dynamic-batch ONNX made by tools/blazeface_dynamic_batch.py; the
// released files work at max_batch 1 only.
//
// Threading: one caller at a time (owns its Backend, input tensor and scratch).
// Example config:
//   models: {faces: {kind: blazeface, path: blazeface_back_256_dyn.onnx, input_size: 256,
//                    max_batch: 8, score_threshold: 0.5}}
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vigil/core/frame.h"
#include "vigil/core/status.h"
#include "vigil/infer/backend.h"
#include "vigil/core/detection.h"
#include "vigil/vision/detector.h"
#include "vigil/vision/letterbox.h"
#include "vigil/vision/nms.h"

namespace vigil {

struct BlazeFaceConfig {
  std::string model_path;
  int input_size = 256;  // 128: faces close to the camera; 256: faces across a room
  float score_threshold = 0.5f;
  float nms_iou = 0.3f;
  NmsMode nms = NmsMode::weighted;
  int max_batch = 8;
  InputRange range = InputRange::minus_one_to_one;
  BackendKind backend = BackendKind::automatic;
  Precision precision = Precision::fp32;  // bf16: oneDNN only
  int threads = 0;  // intra-op threads of this instance (0: the process default)
};

struct Anchor {
  float x = 0;  // centre, normalised to [0, 1]
  float y = 0;
};

class BlazeFace final : public Detector {
 public:
  static constexpr int kAnchors = 896;
  static constexpr int kRegressors = 16;
  static constexpr int kKeypoints = 6;

  // Loads the model with config.backend and checks it is a BlazeFace of this size.
  static Result<std::unique_ptr<BlazeFace>> create(const BlazeFaceConfig& config);
  // Uses the given backend (tests inject their own); checks it the same way.
  static Result<std::unique_ptr<BlazeFace>> create(const BlazeFaceConfig& config, std::unique_ptr<Backend> backend);

  // Detects faces; results[i] belongs to images[i]. Makes ceil(n / max_batch) model calls.
  Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override;
  int max_batch() const override { return config_.max_batch; }

  const BlazeFaceConfig& config() const { return config_; }
  static std::vector<Anchor> make_anchors();

  // Model calls and items since creation (for the batching factor).
  std::uint64_t calls() const { return calls_; }
  std::uint64_t items() const { return items_; }

  // Steps of detect(), public for benchmarks.
  LetterboxTransform preprocess(const Image& image, float* slot);
  void decode(int item, const LetterboxTransform& transform, int frame_width, int frame_height, Detections& out);
  Status run_model(Tensor& input);
  Tensor& input_tensor() { return input_; }
  std::string backend_name() const { return backend_->name(); }

 private:
  BlazeFace(BlazeFaceConfig config, std::unique_ptr<Backend> backend);
  Status check_model();

  BlazeFaceConfig config_;
  std::unique_ptr<Backend> backend_;
  std::vector<Anchor> anchors_;
  Tensor input_;
  std::vector<Tensor> outputs_;
  std::vector<LetterboxTransform> transforms_;
  std::vector<Detection> candidates_;
  std::vector<unsigned char> nms_scratch_;
  LetterboxScratch scratch_;
  std::uint64_t calls_ = 0;
  std::uint64_t items_ = 0;
};

// The output tensor names of the MediaPipe BlazeFace ONNX exports, in the order decode()
// reads them: scores of the 512 fine anchors, of the 384 coarse ones, then their regressors.
const std::vector<std::string>& blazeface_output_names();

}  // namespace vigil
