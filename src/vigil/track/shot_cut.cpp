#include "vigil/track/shot_cut.h"

#include <cmath>

namespace vigil {

namespace {

// Luma of pixel (x, y): the Y plane of YUV images, BT.601 weights of BGR ones.
inline float luma(const Image& image, int x, int y) {
  const Plane& p = image.planes[0];
  const std::uint8_t* row = p.data + static_cast<std::ptrdiff_t>(y) * p.stride;
  if (image.format == PixelFormat::bgr24) {
    const std::uint8_t* px = row + 3 * x;
    return 0.114f * px[0] + 0.587f * px[1] + 0.299f * px[2];
  }
  return row[x];
}

}  // namespace

bool ShotCutDetector::cut(const Image& image) {
  current_.assign(static_cast<std::size_t>(kGridWidth) * kGridHeight, 0.0f);
  if (image.empty()) return false;
  // Each cell: the mean of a 4x4 lattice of samples inside it.
  for (int gy = 0; gy < kGridHeight; ++gy) {
    for (int gx = 0; gx < kGridWidth; ++gx) {
      float sum = 0;
      for (int sy = 0; sy < 4; ++sy) {
        const int y = static_cast<int>((gy + (sy + 0.5) / 4.0) * image.height / kGridHeight);
        for (int sx = 0; sx < 4; ++sx) {
          const int x = static_cast<int>((gx + (sx + 0.5) / 4.0) * image.width / kGridWidth);
          sum += luma(image, x, y);
        }
      }
      current_[static_cast<std::size_t>(gy) * kGridWidth + static_cast<std::size_t>(gx)] = sum / 16.0f;
    }
  }
  bool is_cut = false;
  if (previous_.size() == current_.size()) {
    double total = 0;
    for (std::size_t i = 0; i < current_.size(); ++i) total += std::fabs(current_[i] - previous_[i]);
    last_difference_ = total / static_cast<double>(current_.size());
    is_cut = last_difference_ > threshold_;
  } else {
    last_difference_ = 0;
  }
  previous_.swap(current_);
  return is_cut;
}

}  // namespace vigil
