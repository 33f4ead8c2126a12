// SCRFD: InsightFace's face detector (det_10g.onnx, det_2.5g.onnx, ... from the buffalo
// packs), pre-processing, batched inference and post-processing.
//
// Input [N, 3, S, S], RGB as (x - 127.5) / 128, the frame letterboxed into the square.
// Outputs, in the file's order: scores at strides 8, 16, 32 ([A_s, 1], already sigmoid),
// boxes ([A_s, 4], distances left, top, right, bottom in strides) and, in the 9-output
// models, 5 keypoints ([A_s, 10], offsets in strides); A_s = (S / s)^2 x 2 anchors per cell,
// centred at (x * s, y * s). Exports come with a batch axis ([N, A_s, k]) or without one
// ([N * A_s, k]); both are read. Hard NMS (IoU 0.4) as InsightFace does.
//
// Keypoints are stored as Detection documents for SCRFD: right eye, left eye, nose, mouth
// centre (the midpoint of the corners; so alignment treats SCRFD like BlazeFace), then the
// right and left mouth corners.
//
// Threading: one caller at a time (owns its Backend, tensors and scratch).
// Example config:
//   models: {faces: {kind: scrfd, path: det_10g.onnx, score_threshold: 0.5}}
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vigil/core/detection.h"
#include "vigil/core/frame.h"
#include "vigil/core/status.h"
#include "vigil/infer/backend.h"
#include "vigil/vision/detector.h"
#include "vigil/vision/letterbox.h"
#include "vigil/vision/nchw_input.h"

namespace vigil {

struct ScrfdConfig {
  std::string model_path;
  int input_size = 640;  // used when the file's input size is dynamic; a multiple of 32
  float score_threshold = 0.5f;
  float nms_iou = 0.4f;
  int max_batch = 1;
  BackendKind backend = BackendKind::automatic;
  Precision precision = Precision::fp32;  // bf16: oneDNN only
  int threads = 0;  // intra-op threads of this instance (0: the process default)
};

class Scrfd final : public Detector {
 public:
  static constexpr int kStrides[3] = {8, 16, 32};
  static constexpr int kAnchorsPerCell = 2;

  // Loads the model and checks its signature (6 or 9 outputs of the shapes above).
  static Result<std::unique_ptr<Scrfd>> create(const ScrfdConfig& config);

  Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override;
  int max_batch() const override { return config_.max_batch; }
  int input_size() const { return size_; }
  bool has_keypoints() const { return keypoints_; }
  bool batch_axis() const { return batch_axis_; }

  // Decodes item `item` of the last outputs into detections in frame pixels.
  void decode(int item, const LetterboxTransform& transform, int frame_width, int frame_height, Detections& out);

 private:
  Scrfd(ScrfdConfig config, std::unique_ptr<Backend> backend, int size, bool keypoints, bool batch_axis);

  ScrfdConfig config_;
  std::unique_ptr<Backend> backend_;
  int size_;
  bool keypoints_;
  bool batch_axis_;
  NchwInput input_;
  std::vector<Tensor> outputs_;
  Detections candidates_;
  Detections kept_;
  std::vector<unsigned char> nms_scratch_;
};

}  // namespace vigil
