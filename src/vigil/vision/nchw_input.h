// Pre-processing and mapping back shared by the detectors that take NCHW input (YOLO,
// SCRFD): frames letterboxed into a batch tensor [N, 3, S, S], and detections mapped from
// model pixels back to frame pixels.
//
// Threading: one caller at a time (owns its tensors and scratch).
#pragma once

#include <span>
#include <vector>

#include "vigil/core/detection.h"
#include "vigil/core/frame.h"
#include "vigil/core/status.h"
#include "vigil/infer/tensor.h"
#include "vigil/vision/letterbox.h"

namespace vigil {

class NchwInput {
 public:
  // Letterboxes images[first, first + n) into tensor() as [n, 3, size, size]; an empty image
  // is invalid_argument.
  Status fill(std::span<const Image* const> images, std::size_t first, std::size_t n, int size, InputRange range);
  Tensor& tensor() { return input_; }
  const LetterboxTransform& transform(std::size_t i) const { return transforms_[i]; }

 private:
  Tensor input_;
  Tensor nhwc_;
  std::vector<LetterboxTransform> transforms_;
  LetterboxScratch scratch_;
};

// Letterboxes `image` into one NCHW item of size x size (RGB, range) through `nhwc`.
LetterboxTransform letterbox_nchw(const Image& image, int size, InputRange range, Tensor& nhwc, float* dst,
                                  LetterboxScratch& scratch);

// Moves a detection's box and keypoints from model pixels to frame pixels; the box is
// clipped to the frame.
void detection_to_frame(Detection& d, const LetterboxTransform& transform, int frame_width, int frame_height);

}  // namespace vigil
