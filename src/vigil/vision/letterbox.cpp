#include "vigil/vision/letterbox.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "vigil/vision/yuv.h"

namespace vigil {

namespace {

cv::Mat plane_mat(const Image& image, int plane, int type) {
  return cv::Mat(image.plane_height(plane), image.plane_width(plane), type,
                 const_cast<std::uint8_t*>(image.planes[plane].data), static_cast<std::size_t>(image.planes[plane].stride));
}

// Intermediate halvings, one Mat per level, so that their sizes never change from call to
// call and steady state allocates nothing (a 4K frame to 128 pixels takes 4 levels).
using Halvings = std::array<cv::Mat, 8>;

// Shrinks by halving with area averaging (OpenCV's fast 2x2 path) while the image is at
// least twice the target, then one bilinear step of less than 2x. About 4x cheaper than a
// direct area resize by a large or fractional factor, with the same anti-aliasing.
void resize_into(const cv::Mat& src, cv::Mat& dst, int width, int height, Halvings& halves) {
  const cv::Mat* current = &src;
  for (std::size_t level = 0; current->cols / 2 >= width && current->rows / 2 >= height; ++level) {
    cv::Mat& half = halves[std::min(level, halves.size() - 1)];
    cv::resize(*current, half, cv::Size(current->cols / 2, current->rows / 2), 0, 0, cv::INTER_AREA);
    current = &half;
  }
  cv::resize(*current, dst, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
}

}  // namespace

struct LetterboxScratch::Planes {
  cv::Mat y, u, v, uv, bgr;
  cv::Mat i420, rgb;  // the fast path: resized planes laid out as one I420 image, then RGB
  Halvings halves_y, halves_u, halves_v, halves_uv, halves_bgr;
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
  float mul = 1.0f / 255.0f, add = 0.0f;  // zero_to_one
  if (range == InputRange::minus_one_to_one) {
    mul = 1.0f / 127.5f;
    add = -1.0f;
  } else if (range == InputRange::insightface) {
    mul = 1.0f / 128.0f;
    add = -127.5f / 128.0f;
  } else if (range == InputRange::pixels) {
    mul = 1.0f;
  }
  const float pad_value = add;  // black

  // Padding only where the picture is not (the picture rows are written below).
  const std::size_t row_floats = static_cast<std::size_t>(size) * 3;
  std::fill(dst, dst + row_floats * static_cast<std::size_t>(py), pad_value);
  std::fill(dst + row_floats * static_cast<std::size_t>(py + h), dst + row_floats * static_cast<std::size_t>(size),
            pad_value);
  for (int y = py; y < py + h; ++y) {
    float* row = dst + row_floats * static_cast<std::size_t>(y);
    std::fill(row, row + static_cast<std::size_t>(px) * 3, pad_value);
    std::fill(row + static_cast<std::size_t>(px + w) * 3, row + row_floats, pad_value);
  }

  if (image.format == PixelFormat::bgr24) {
    resize_into(plane_mat(image, 0, CV_8UC3), scratch.bgr, w, h, scratch.halves_bgr);
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

  if (!image.full_range && w % 2 == 0 && h % 2 == 0) {
    // Video range at an even size (the usual camera and file case): the planes are resized
    // into one I420 (or NV12) image of the model's size and OpenCV's vectorised converters
    // turn it into RGB bytes and then into the model's floats, about twice as fast as the
    // per-pixel loop below.
    const int cw = w / 2, ch = h / 2;
    cv::Mat& i420 = scratch.i420;
    i420.create(h * 3 / 2, w, CV_8UC1);
    cv::Mat y_part(h, w, CV_8UC1, i420.data, static_cast<std::size_t>(w));
    resize_into(plane_mat(image, 0, CV_8UC1), y_part, w, h, scratch.halves_y);
    std::uint8_t* chroma = i420.data + static_cast<std::size_t>(w) * h;
    if (image.format == PixelFormat::nv12) {
      cv::Mat uv_part(ch, cw, CV_8UC2, chroma, static_cast<std::size_t>(w));
      resize_into(plane_mat(image, 1, CV_8UC2), uv_part, cw, ch, scratch.halves_uv);
      cv::cvtColorTwoPlane(y_part, uv_part, scratch.rgb, cv::COLOR_YUV2RGB_NV12);
    } else {
      cv::Mat u_part(ch, cw, CV_8UC1, chroma, static_cast<std::size_t>(cw));
      cv::Mat v_part(ch, cw, CV_8UC1, chroma + static_cast<std::size_t>(cw) * ch, static_cast<std::size_t>(cw));
      resize_into(plane_mat(image, 1, CV_8UC1), u_part, cw, ch, scratch.halves_u);
      resize_into(plane_mat(image, 2, CV_8UC1), v_part, cw, ch, scratch.halves_v);
      cv::cvtColor(i420, scratch.rgb, cv::COLOR_YUV2RGB_I420);
    }
    cv::Mat out(h, w, CV_32FC3, dst + (static_cast<std::size_t>(py) * size + px) * 3, row_floats * sizeof(float));
    scratch.rgb.convertTo(out, CV_32F, mul, add);
    return t;
  }

  // Luma to the model's size; chroma to half of it (4:2:0, as it was), read at x/2, y/2:
  // shrinking chroma by a non-integer factor to full size would cost twice the luma.
  resize_into(plane_mat(image, 0, CV_8UC1), scratch.y, w, h, scratch.halves_y);
  const int cw = (w + 1) / 2;
  const int ch = (h + 1) / 2;
  const std::uint8_t* u_base = nullptr;
  const std::uint8_t* v_base = nullptr;
  std::size_t u_step = 0, v_step = 0;
  int chroma_stride = 1;  // bytes between consecutive U (or V) samples in the resized rows
  if (image.format == PixelFormat::nv12) {
    resize_into(plane_mat(image, 1, CV_8UC2), scratch.uv, cw, ch, scratch.halves_uv);
    u_base = scratch.uv.ptr<std::uint8_t>();
    v_base = u_base + 1;
    u_step = v_step = scratch.uv.step;
    chroma_stride = 2;
  } else {
    resize_into(plane_mat(image, 1, CV_8UC1), scratch.u, cw, ch, scratch.halves_u);
    resize_into(plane_mat(image, 2, CV_8UC1), scratch.v, cw, ch, scratch.halves_v);
    u_base = scratch.u.ptr<std::uint8_t>();
    v_base = scratch.v.ptr<std::uint8_t>();
    u_step = scratch.u.step;
    v_step = scratch.v.step;
  }
  const YuvToRgb k = YuvToRgb::for_range(image.full_range);
  for (int y = 0; y < h; ++y) {
    const std::uint8_t* yy = scratch.y.ptr<std::uint8_t>(y);
    const std::uint8_t* uu = u_base + (y / 2) * u_step;
    const std::uint8_t* vv = v_base + (y / 2) * v_step;
    float* out = dst + (static_cast<std::size_t>(y + py) * size + px) * 3;
    // Two luma samples share one chroma sample: compute the chroma terms once per pair.
    for (int x = 0; x < w; x += 2) {
      const float cb = static_cast<float>(uu[(x / 2) * chroma_stride]) - 128.0f;
      const float cr = static_cast<float>(vv[(x / 2) * chroma_stride]) - 128.0f;
      const float dr = k.cr_r * cr;
      const float dg = k.cb_g * cb + k.cr_g * cr;
      const float db = k.cb_b * cb;
      const int pair_end = std::min(x + 2, w);
      for (int i = x; i < pair_end; ++i, out += 3) {
        const float luma = k.cy * (static_cast<float>(yy[i]) - k.y_offset);
        out[0] = std::clamp(luma + dr, 0.0f, 255.0f) * mul + add;
        out[1] = std::clamp(luma + dg, 0.0f, 255.0f) * mul + add;
        out[2] = std::clamp(luma + db, 0.0f, 255.0f) * mul + add;
      }
    }
  }
  return t;
}

}  // namespace vigil
