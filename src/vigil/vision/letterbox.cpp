#include "vigil/vision/letterbox.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

namespace vigil {

namespace {

cv::Mat plane_mat(const Image& image, int plane, int type) {
  return cv::Mat(image.plane_height(plane), image.plane_width(plane), type,
                 const_cast<std::uint8_t*>(image.planes[plane].data), static_cast<std::size_t>(image.planes[plane].stride));
}

void resize_into(const cv::Mat& src, cv::Mat& dst, int width, int height) {
  const int interpolation = src.cols > width ? cv::INTER_AREA : cv::INTER_LINEAR;
  cv::resize(src, dst, cv::Size(width, height), 0, 0, interpolation);
}

// BT.601 YUV to RGB in [0, 255]; coefficients from ITU-R BT.601 (video range scales
// Y from 16..235 and chroma from 16..240).
struct YuvToRgb {
  float cy, cr_r, cb_g, cr_g, cb_b, y_offset;
  static YuvToRgb for_range(bool full_range) {
    if (full_range) return {1.0f, 1.402f, -0.344136f, -0.714136f, 1.772f, 0.0f};
    return {1.164383f, 1.596027f, -0.391762f, -0.812968f, 2.017232f, 16.0f};
  }
};

}  // namespace

struct LetterboxScratch::Planes {
  cv::Mat y, u, v, uv, bgr;
};
LetterboxScratch::LetterboxScratch() : planes_(std::make_unique<Planes>()) {}
LetterboxScratch::~LetterboxScratch() = default;
LetterboxScratch::LetterboxScratch(LetterboxScratch&&) noexcept = default;
LetterboxScratch& LetterboxScratch::operator=(LetterboxScratch&&) noexcept = default;

LetterboxTransform letterbox_transform(int frame_width, int frame_height, int size) {
  LetterboxTransform t;
  t.scale = static_cast<float>(size) / static_cast<float>(std::max(frame_width, frame_height));
  const int w = std::max(1, static_cast<int>(std::lround(frame_width * t.scale)));
  const int h = std::max(1, static_cast<int>(std::lround(frame_height * t.scale)));
  t.pad_x = static_cast<float>((size - w) / 2);
  t.pad_y = static_cast<float>((size - h) / 2);
  return t;
}

LetterboxTransform letterbox_rgb(const Image& image, int size, InputRange range, float* dst, LetterboxScratch& scratch_owner) {
  LetterboxScratch::Planes& scratch = scratch_owner.planes();
  const LetterboxTransform t = letterbox_transform(image.width, image.height, size);
  const int w = std::min(size, std::max(1, static_cast<int>(std::lround(image.width * t.scale))));
  const int h = std::min(size, std::max(1, static_cast<int>(std::lround(image.height * t.scale))));
  const int px = static_cast<int>(t.pad_x);
  const int py = static_cast<int>(t.pad_y);
  const float mul = range == InputRange::minus_one_to_one ? 1.0f / 127.5f : 1.0f / 255.0f;
  const float add = range == InputRange::minus_one_to_one ? -1.0f : 0.0f;
  const float pad_value = add;  // black

  std::fill(dst, dst + static_cast<std::size_t>(size) * size * 3, pad_value);

  if (image.format == PixelFormat::bgr24) {
    resize_into(plane_mat(image, 0, CV_8UC3), scratch.bgr, w, h);
    for (int y = 0; y < h; ++y) {
      const std::uint8_t* in = scratch.bgr.ptr<std::uint8_t>(y);
      float* out = dst + (static_cast<std::size_t>(y + py) * size + px) * 3;
      for (int x = 0; x < w; ++x, in += 3, out += 3) {
        out[0] = in[2] * mul + add;
        out[1] = in[1] * mul + add;
        out[2] = in[0] * mul + add;
      }
    }
    return t;
  }

  resize_into(plane_mat(image, 0, CV_8UC1), scratch.y, w, h);
  const std::uint8_t* u_row_base = nullptr;
  const std::uint8_t* v_row_base = nullptr;
  std::size_t u_step = 0, v_step = 0;
  int chroma_stride = 1;  // bytes between consecutive U (or V) samples in the resized rows
  if (image.format == PixelFormat::nv12) {
    resize_into(plane_mat(image, 1, CV_8UC2), scratch.uv, w, h);
    u_row_base = scratch.uv.ptr<std::uint8_t>();
    v_row_base = u_row_base + 1;
    u_step = v_step = scratch.uv.step;
    chroma_stride = 2;
  } else {
    resize_into(plane_mat(image, 1, CV_8UC1), scratch.u, w, h);
    resize_into(plane_mat(image, 2, CV_8UC1), scratch.v, w, h);
    u_row_base = scratch.u.ptr<std::uint8_t>();
    v_row_base = scratch.v.ptr<std::uint8_t>();
    u_step = scratch.u.step;
    v_step = scratch.v.step;
  }
  const YuvToRgb k = YuvToRgb::for_range(image.full_range);
  for (int y = 0; y < h; ++y) {
    const std::uint8_t* yy = scratch.y.ptr<std::uint8_t>(y);
    const std::uint8_t* uu = u_row_base + y * u_step;
    const std::uint8_t* vv = v_row_base + y * v_step;
    float* out = dst + (static_cast<std::size_t>(y + py) * size + px) * 3;
    for (int x = 0; x < w; ++x, out += 3) {
      const float luma = k.cy * (static_cast<float>(yy[x]) - k.y_offset);
      const float cb = static_cast<float>(uu[x * chroma_stride]) - 128.0f;
      const float cr = static_cast<float>(vv[x * chroma_stride]) - 128.0f;
      const float r = std::clamp(luma + k.cr_r * cr, 0.0f, 255.0f);
      const float g = std::clamp(luma + k.cb_g * cb + k.cr_g * cr, 0.0f, 255.0f);
      const float b = std::clamp(luma + k.cb_b * cb, 0.0f, 255.0f);
      out[0] = r * mul + add;
      out[1] = g * mul + add;
      out[2] = b * mul + add;
    }
  }
  return t;
}

}  // namespace vigil
