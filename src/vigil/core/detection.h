// Detection: one object found in one frame, in source-frame pixels. It lives in core so that
// sinks, the tracker and the result type can use it without depending on vision.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace vigil {

struct Point2 {
  float x = 0;
  float y = 0;
};

struct BBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float width() const { return x2 - x1; }
  float height() const { return y2 - y1; }
  float area() const { return width() > 0 && height() > 0 ? width() * height() : 0.0f; }
};

// Intersection over union of two boxes; 0 when either is empty.
float iou(const BBox& a, const BBox& b);

struct Detection {
  static constexpr int kMaxKeypoints = 17;  // COCO pose
  BBox bbox;
  float score = 0;
  int class_id = -1;  // class index of a multi-class detector (YOLO: COCO 0 person, 2 car...); -1: none
  int keypoint_count = 0;
  // BlazeFace: right eye, left eye, nose tip, mouth, right ear, left ear (the person's right
  //   and left). SCRFD: right eye, left eye, nose tip, mouth centre, then the right and left
  //   mouth corners (the first four as BlazeFace's, so alignment treats both alike).
  // YOLO pose: the 17 COCO keypoints (nose, eyes, ears, shoulders, elbows, wrists, hips,
  //   knees, ankles), with keypoint_scores their visibility.
  std::array<Point2, kMaxKeypoints> keypoints{};
  std::array<float, kMaxKeypoints> keypoint_scores{};
  // The track this detection was assigned to (0: none; tracking off or not confirmed).
  std::uint64_t track_id = 0;
};

using Detections = std::vector<Detection>;

// The class of a person in COCO's numbering (YOLO, YOLO pose, MoveNet's people).
inline constexpr int kPersonClass = 0;

}  // namespace vigil
