// YOLO: Ultralytics YOLOv8 / YOLO11 detection and pose models as exported to ONNX
// (`yolo export format=onnx`), pre-processing, batched inference and post-processing.
//
// Input `images` [N, 3, S, S], RGB in [0, 1], the frame letterboxed into the square (black
// bars; Ultralytics pads with grey 114, which moves scores by a little at the borders).
// Output `output0` [N, 4 + C, A]: per anchor the box centre, width and height in input
// pixels, then C class scores (already sigmoid). Pose models: [N, 4 + 1 + K*3, A], the
// person score, then K keypoints as (x, y, visibility). A = (S/8)^2 + (S/16)^2 + (S/32)^2.
// Post-processing keeps anchors whose best class scores over the threshold and runs hard NMS
// per class (a car does not suppress a truck on the same box), as Ultralytics does.
//
// Threading: one caller at a time (owns its Backend, tensors and scratch).
// Example config:
//   models: {objects: {kind: yolo, path: yolo11n.onnx, score_threshold: 0.25, max_batch: 4}}
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

struct YoloConfig {
  std::string model_path;
  bool pose = false;     // [N, 5 + K*3, A] instead of [N, 4 + C, A]
  int input_size = 0;    // 0: from the model file (640 for the usual exports)
  float score_threshold = 0.25f;
  float nms_iou = 0.7f;
  int max_batch = 1;
  BackendKind backend = BackendKind::automatic;
  Precision precision = Precision::fp32;  // bf16: oneDNN only
  int threads = 0;  // intra-op threads of this instance (0: the process default)
};

class Yolo final : public Detector {
 public:
  // Loads the model and checks its signature: a wrong file is invalid_argument naming what
  // was expected and what the file has.
  static Result<std::unique_ptr<Yolo>> create(const YoloConfig& config);

  Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override;
  int max_batch() const override { return config_.max_batch; }

  int input_size() const { return size_; }
  int classes() const { return classes_; }     // detection models
  int keypoints() const { return keypoints_; } // pose models
  const YoloConfig& config() const { return config_; }

  // Decodes item `item` of an output [N, rows, A] into detections in frame pixels.
  void decode(const Tensor& output, int item, const LetterboxTransform& transform, int frame_width, int frame_height,
              Detections& out);

 private:
  Yolo(YoloConfig config, std::unique_ptr<Backend> backend, int size, int rows, int anchors);

  YoloConfig config_;
  std::unique_ptr<Backend> backend_;
  int size_;
  int rows_;
  int anchors_;
  int classes_ = 0;
  int keypoints_ = 0;
  NchwInput input_;
  std::vector<Tensor> outputs_;
  Detections candidates_;
  Detections kept_;
  std::vector<unsigned char> nms_scratch_;
};

}  // namespace vigil
