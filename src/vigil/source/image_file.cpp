#include "vigil/source/image_file.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace vigil {

Result<StillImage> read_image_file(const std::string& path, double scale, bool mirror) {
  cv::Mat bgr;
  try {
    bgr = cv::imread(path, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return Error{ErrorCode::invalid_argument, path + ": " + e.what()};
  }
  if (bgr.empty() || bgr.cols < 2 || bgr.rows < 2) {
    return Error{ErrorCode::invalid_argument, path + ": missing or not a picture"};
  }
  if (!(scale > 0 && scale <= 4)) return Error{ErrorCode::invalid_argument, path + ": scale must be in (0, 4]"};
  if (scale != 1.0) {
    cv::Mat resized;
    cv::resize(bgr, resized, cv::Size(), scale, scale, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    bgr = resized;
  }
  if (mirror) cv::flip(bgr, bgr, 1);
  if (bgr.cols < 2 || bgr.rows < 2) return Error{ErrorCode::invalid_argument, path + ": too small after scaling"};
  bgr = bgr(cv::Rect(0, 0, bgr.cols & ~1, bgr.rows & ~1));
  cv::Mat i420;
  cv::cvtColor(bgr, i420, cv::COLOR_BGR2YUV_I420);
  StillImage out;
  out.storage = std::make_unique<ByteStorage>();
  out.image = out.storage->allocate(PixelFormat::yuv420p, bgr.cols, bgr.rows);
  const std::uint8_t* src = i420.ptr<std::uint8_t>();
  for (int p = 0; p < 3; ++p) {
    const int w = out.image.plane_width(p);
    const int h = out.image.plane_height(p);
    auto* dst = const_cast<std::uint8_t*>(out.image.planes[p].data);
    for (int row = 0; row < h; ++row) std::copy_n(src + static_cast<std::ptrdiff_t>(row) * w, w, dst + static_cast<std::ptrdiff_t>(row) * out.image.planes[p].stride);
    src += static_cast<std::size_t>(w) * static_cast<std::size_t>(h);
  }
  return out;
}

}  // namespace vigil
