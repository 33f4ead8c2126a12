#include "vigil/vision/nchw_input.h"

#include <algorithm>
#include <string>

namespace vigil {

LetterboxTransform letterbox_nchw(const Image& image, int size, InputRange range, Tensor& nhwc, float* dst,
                                  LetterboxScratch& scratch) {
  nhwc.reshape({size, size, 3});
  const LetterboxTransform t = letterbox_rgb(image, size, range, nhwc.data(), scratch);
  const std::size_t plane = static_cast<std::size_t>(size) * static_cast<std::size_t>(size);
  const float* src = nhwc.data();
  for (std::size_t p = 0; p < plane; ++p) {
    dst[p] = src[3 * p];
    dst[plane + p] = src[3 * p + 1];
    dst[2 * plane + p] = src[3 * p + 2];
  }
  return t;
}

Status NchwInput::fill(std::span<const Image* const> images, std::size_t first, std::size_t n, int size, InputRange range) {
  input_.reshape({static_cast<std::int64_t>(n), 3, size, size});
  transforms_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Image* image = images[first + i];
    if (image == nullptr || image->empty()) {
      return Error{ErrorCode::invalid_argument, "detect: image " + std::to_string(first + i) + " is empty"};
    }
    transforms_[i] = letterbox_nchw(*image, size, range, nhwc_, input_.item(static_cast<std::int64_t>(i)), scratch_);
  }
  return {};
}

void detection_to_frame(Detection& d, const LetterboxTransform& transform, int frame_width, int frame_height) {
  const float max_x = static_cast<float>(frame_width), max_y = static_cast<float>(frame_height);
  const Point2 p1 = transform.to_frame(d.bbox.x1, d.bbox.y1);
  const Point2 p2 = transform.to_frame(d.bbox.x2, d.bbox.y2);
  d.bbox = {std::clamp(p1.x, 0.0f, max_x), std::clamp(p1.y, 0.0f, max_y), std::clamp(p2.x, 0.0f, max_x),
            std::clamp(p2.y, 0.0f, max_y)};
  for (int k = 0; k < d.keypoint_count; ++k) d.keypoints[k] = transform.to_frame(d.keypoints[k].x, d.keypoints[k].y);
}

}  // namespace vigil
