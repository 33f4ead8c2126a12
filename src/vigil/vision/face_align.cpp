#include "vigil/vision/face_align.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "vigil/vision/yuv.h"

namespace vigil {

namespace {

// Bilinear sample of one 8-bit channel at continuous pixel-index coordinates, edges clamped.
// step: bytes between neighbouring samples in a row (1 planar, 2 for nv12's UV, 3 for BGR).
inline float sample(const std::uint8_t* base, int stride, int step, int width, int height, float x, float y) {
  x = std::clamp(x, 0.0f, static_cast<float>(width - 1));
  y = std::clamp(y, 0.0f, static_cast<float>(height - 1));
  const int x0 = static_cast<int>(x);
  const int y0 = static_cast<int>(y);
  const int x1 = std::min(x0 + 1, width - 1);
  const int y1 = std::min(y0 + 1, height - 1);
  const float fx = x - static_cast<float>(x0);
  const float fy = y - static_cast<float>(y0);
  const std::uint8_t* r0 = base + static_cast<std::ptrdiff_t>(y0) * stride;
  const std::uint8_t* r1 = base + static_cast<std::ptrdiff_t>(y1) * stride;
  const float top = r0[x0 * step] + (r0[x1 * step] - r0[x0 * step]) * fx;
  const float bottom = r1[x0 * step] + (r1[x1 * step] - r1[x0 * step]) * fx;
  return top + (bottom - top) * fy;
}

}  // namespace

float Similarity::scale() const { return std::sqrt(a * a + b * b); }

Similarity Similarity::inverse() const {
  const float d = a * a + b * b;
  if (d <= 0) return {};
  Similarity inv;
  inv.a = a / d;
  inv.b = -b / d;
  inv.tx = -(inv.a * tx - inv.b * ty);
  inv.ty = -(inv.b * tx + inv.a * ty);
  return inv;
}

Similarity fit_similarity(std::span<const Point2> src, std::span<const Point2> dst) {
  const std::size_t n = std::min(src.size(), dst.size());
  if (n < 2) return {};
  double msx = 0, msy = 0, mdx = 0, mdy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    msx += src[i].x, msy += src[i].y, mdx += dst[i].x, mdy += dst[i].y;
  }
  msx /= static_cast<double>(n), msy /= static_cast<double>(n), mdx /= static_cast<double>(n), mdy /= static_cast<double>(n);
  // For a similarity, the least-squares a and b have a closed form (complex-number regression).
  double sxx = 0, sab = 0, sba = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double sx = src[i].x - msx, sy = src[i].y - msy, dx = dst[i].x - mdx, dy = dst[i].y - mdy;
    sxx += sx * sx + sy * sy;
    sab += sx * dx + sy * dy;
    sba += sx * dy - sy * dx;
  }
  if (sxx <= 1e-12) return {};
  Similarity t;
  t.a = static_cast<float>(sab / sxx);
  t.b = static_cast<float>(sba / sxx);
  t.tx = static_cast<float>(mdx - (t.a * msx - t.b * msy));
  t.ty = static_cast<float>(mdy - (t.b * msx + t.a * msy));
  return t;
}

const std::array<Point2, 4>& face_chip_template() {
  // dlib's mean face (eye centres = mean of the six eye landmarks, nose tip, mouth corners'
  // midpoint), padded 25% on each side: chip = (v + 0.25) / 1.5 * 150.
  static const std::array<Point2, 4> points{{{47.57f, 46.60f}, {100.48f, 46.60f}, {74.01f, 76.56f}, {74.01f, 103.02f}}};
  return points;
}

const FaceTemplate& dlib_face_template() {
  static const FaceTemplate face{kFaceChipSize, face_chip_template(), 100.0f};
  return face;
}

const FaceTemplate& arcface_face_template() {
  // arcface_dst: eyes (38.2946, 51.6963), (73.5318, 51.5014), nose (56.0252, 71.7366),
  // mouth corners (41.5493, 92.3655), (70.7299, 92.2041).
  static const FaceTemplate face{
      112, {{{38.2946f, 51.6963f}, {73.5318f, 51.5014f}, {56.0252f, 71.7366f}, {56.1396f, 92.2848f}}}, 74.0f};
  return face;
}

Similarity face_chip_transform(const Detection& detection, const FaceTemplate& face) {
  if (detection.keypoint_count >= 4) return fit_similarity(std::span(detection.keypoints.data(), 4), face.points);
  // No keypoints: the box's width becomes the template's face width, centred.
  const BBox& b = detection.bbox;
  const float w = std::max(1.0f, b.width());
  const float centre = static_cast<float>(face.size) * 0.5f;
  Similarity t;
  t.a = face.face_width / w;
  t.tx = centre - t.a * (b.x1 + b.x2) * 0.5f;
  t.ty = centre - t.a * (b.y1 + b.y2) * 0.5f;
  return t;
}

FaceQuality face_quality_from_keypoints(const Detection& detection) {
  FaceQuality q;
  q.score = std::clamp(detection.score, 0.0f, 1.0f);
  if (detection.keypoint_count < 3) {
    q.size = std::clamp(detection.bbox.width() / 80.0f, 0.0f, 1.0f);
    q.frontal = 0.5f;
    return q;
  }
  const Point2 re = detection.keypoints[0], le = detection.keypoints[1], nose = detection.keypoints[2];
  const float ex = le.x - re.x, ey = le.y - re.y;
  const float eye2 = ex * ex + ey * ey;
  const float eye_distance = std::sqrt(eye2);
  q.size = std::clamp(eye_distance / 40.0f, 0.0f, 1.0f);
  if (eye2 <= 1e-6f) return q;
  // Where the nose falls between the eyes, along the eye line: 0.5 when facing the camera.
  const float t = ((nose.x - re.x) * ex + (nose.y - re.y) * ey) / eye2;
  q.frontal = std::clamp(1.0f - 2.0f * std::abs(t - 0.5f), 0.0f, 1.0f);
  return q;
}

FaceQuality FaceAligner::align(const Image& image, const Detection& detection, float* dst, const FaceTemplate& face) {
  FaceQuality q = face_quality_from_keypoints(detection);
  const Similarity to_frame = face_chip_transform(detection, face).inverse();
  sample_chip(image, to_frame, face.size, {0, face.size}, dst);
  q.sharpness = sharpness(face.size);
  return q;
}

FaceQuality FaceAligner::measure(const Image& image, const Detection& detection, const FaceTemplate& face) {
  FaceQuality q = face_quality_from_keypoints(detection);
  const Similarity to_frame = face_chip_transform(detection, face).inverse();
  const auto [lo, hi] = centre(face.size);
  sample_chip(image, to_frame, face.size, {std::max(0, lo - 1), std::min(face.size, hi + 1)}, nullptr);
  q.sharpness = sharpness(face.size);
  return q;
}

// The chip's pixels in rows and columns [span.first, span.second): their luma into luma_, and
// their RGB into dst (when not null).
void FaceAligner::sample_chip(const Image& image, const Similarity& to_frame, int chip_size, std::pair<int, int> span, float* dst) {
  // Shrinking a large face: average n x n bilinear samples per chip pixel (n = frame pixels
  // per chip pixel, at most 4) so the chip is not aliased.
  const float frame_per_chip = to_frame.scale();
  const int n = std::clamp(static_cast<int>(std::ceil(frame_per_chip - 0.25f)), 1, 4);
  const float inv_n2 = 1.0f / static_cast<float>(n * n);
  const std::size_t pixels = static_cast<std::size_t>(chip_size) * static_cast<std::size_t>(chip_size);
  luma_.resize(pixels);
  const YuvToRgb k = YuvToRgb::for_range(image.full_range);
  const bool bgr = image.format == PixelFormat::bgr24;
  const bool nv12 = image.format == PixelFormat::nv12;
  const bool colour = dst != nullptr || bgr;  // BGR's luma comes from its colours
  const int cw = image.plane_width(bgr ? 0 : 1), chh = image.plane_height(bgr ? 0 : 1);
  for (int y = span.first; y < span.second; ++y) {
    for (int x = span.first; x < span.second; ++x) {
      float r = 0, g = 0, b = 0, luma_sum = 0;
      for (int sy = 0; sy < n; ++sy) {
        for (int sx = 0; sx < n; ++sx) {
          const Point2 chip{static_cast<float>(x) + (static_cast<float>(sx) + 0.5f) / static_cast<float>(n),
                            static_cast<float>(y) + (static_cast<float>(sy) + 0.5f) / static_cast<float>(n)};
          const Point2 f = to_frame.apply(chip);  // continuous frame coordinates
          const float fx = f.x - 0.5f, fy = f.y - 0.5f;
          if (bgr) {
            const std::uint8_t* p = image.planes[0].data;
            const int s = image.planes[0].stride;
            b += sample(p, s, 3, image.width, image.height, fx, fy);
            g += sample(p + 1, s, 3, image.width, image.height, fx, fy);
            r += sample(p + 2, s, 3, image.width, image.height, fx, fy);
            continue;
          }
          const float luma = sample(image.planes[0].data, image.planes[0].stride, 1, image.width, image.height, fx, fy);
          const float l = k.cy * (luma - k.y_offset);
          luma_sum += l;
          if (!colour) continue;
          const float cx = f.x * 0.5f - 0.5f, cy = f.y * 0.5f - 0.5f;
          float cb = 0, cr = 0;
          if (nv12) {
            cb = sample(image.planes[1].data, image.planes[1].stride, 2, cw, chh, cx, cy);
            cr = sample(image.planes[1].data + 1, image.planes[1].stride, 2, cw, chh, cx, cy);
          } else {
            cb = sample(image.planes[1].data, image.planes[1].stride, 1, cw, chh, cx, cy);
            cr = sample(image.planes[2].data, image.planes[2].stride, 1, cw, chh, cx, cy);
          }
          cb -= 128.0f;
          cr -= 128.0f;
          r += std::clamp(l + k.cr_r * cr, 0.0f, 255.0f);
          g += std::clamp(l + k.cb_g * cb + k.cr_g * cr, 0.0f, 255.0f);
          b += std::clamp(l + k.cb_b * cb, 0.0f, 255.0f);
        }
      }
      const std::size_t at = static_cast<std::size_t>(y) * static_cast<std::size_t>(chip_size) + static_cast<std::size_t>(x);
      const float red = r * inv_n2, green = g * inv_n2, blue = b * inv_n2;
      if (dst != nullptr) {
        float* out = dst + at * 3;
        out[0] = red;
        out[1] = green;
        out[2] = blue;
      }
      luma_[at] = bgr ? 0.299f * red + 0.587f * green + 0.114f * blue : luma_sum * inv_n2;
    }
  }
}

// The rows and columns [first, second) of a chip that its sharpness is measured over (the face).
std::pair<int, int> FaceAligner::centre(int chip_size) { return {chip_size / 4, chip_size - chip_size / 4}; }

// Variance of the 4-neighbour Laplacian of luma_ over the chip's centre, saturating.
float FaceAligner::sharpness(int chip_size) const {
  double sum = 0, sum2 = 0;
  int count = 0;
  const auto [lo, hi] = centre(chip_size);
  for (int y = lo; y < hi; ++y) {
    const float* row = luma_.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(chip_size);
    for (int x = lo; x < hi; ++x) {
      const float lap = row[x - 1] + row[x + 1] + row[x - chip_size] + row[x + chip_size] - 4.0f * row[x];
      sum += lap;
      sum2 += static_cast<double>(lap) * lap;
      ++count;
    }
  }
  const double mean = count ? sum / count : 0.0;
  const double variance = count ? std::max(0.0, sum2 / count - mean * mean) : 0.0;
  return static_cast<float>(variance / (variance + 50.0));
}

Status face_thumbnail_jpeg(const Image& image, const BBox& box, int size, std::vector<std::uint8_t>& out) {
  if (image.empty() || box.area() <= 0 || size < 8) return Error{ErrorCode::invalid_argument, "face thumbnail: nothing to crop"};
  // A square 1.3 times the box's longer side, inside the frame, on even pixels (4:2:0).
  const float side = 1.3f * std::max(box.width(), box.height());
  const float cx = 0.5f * (box.x1 + box.x2), cy = 0.5f * (box.y1 + box.y2);
  int x0 = std::clamp(static_cast<int>(cx - side / 2), 0, image.width - 2) & ~1;
  int y0 = std::clamp(static_cast<int>(cy - side / 2), 0, image.height - 2) & ~1;
  int w = std::clamp(static_cast<int>(side), 2, image.width - x0) & ~1;
  int h = std::clamp(static_cast<int>(side), 2, image.height - y0) & ~1;
  const int s = size & ~1;
  auto plane = [&](int p, int type) {
    return cv::Mat(image.plane_height(p), image.plane_width(p), type, const_cast<std::uint8_t*>(image.planes[p].data),
                   static_cast<std::size_t>(image.planes[p].stride));
  };
  cv::Mat bgr;
  if (image.format == PixelFormat::bgr24) {
    cv::resize(plane(0, CV_8UC3)(cv::Rect(x0, y0, w, h)), bgr, cv::Size(s, s), 0, 0, cv::INTER_AREA);
  } else {
    cv::Mat i420(s * 3 / 2, s, CV_8UC1);
    cv::Mat y(s, s, CV_8UC1, i420.data), u(s / 2, s / 2, CV_8UC1, i420.data + s * s),
        v(s / 2, s / 2, CV_8UC1, i420.data + s * s + (s / 2) * (s / 2));
    cv::resize(plane(0, CV_8UC1)(cv::Rect(x0, y0, w, h)), y, y.size(), 0, 0, cv::INTER_AREA);
    const cv::Rect chroma(x0 / 2, y0 / 2, w / 2, h / 2);
    if (image.format == PixelFormat::nv12) {
      cv::Mat uv[2];
      cv::split(plane(1, CV_8UC2)(chroma), uv);
      cv::resize(uv[0], u, u.size(), 0, 0, cv::INTER_AREA);
      cv::resize(uv[1], v, v.size(), 0, 0, cv::INTER_AREA);
    } else {
      cv::resize(plane(1, CV_8UC1)(chroma), u, u.size(), 0, 0, cv::INTER_AREA);
      cv::resize(plane(2, CV_8UC1)(chroma), v, v.size(), 0, 0, cv::INTER_AREA);
    }
    cv::cvtColor(i420, bgr, cv::COLOR_YUV2BGR_I420);
  }
  if (!cv::imencode(".jpg", bgr, out, {cv::IMWRITE_JPEG_QUALITY, 85})) {
    return Error{ErrorCode::internal, "face thumbnail: JPEG encoding failed"};
  }
  return {};
}

void prepare_image_codecs() { static_cast<void>(cv::haveImageWriter(".jpg")); }

}  // namespace vigil
