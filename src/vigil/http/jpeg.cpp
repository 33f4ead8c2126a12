#include "vigil/http/jpeg.h"

#include <turbojpeg.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <opencv2/imgproc.hpp>
#include <string>
#include <utility>

namespace vigil {

namespace {

cv::Mat plane_mat(const Image& image, int plane, int type) {
  return cv::Mat(image.plane_height(plane), image.plane_width(plane), type,
                 const_cast<std::uint8_t*>(image.planes[plane].data), static_cast<std::size_t>(image.planes[plane].stride));
}

// Video range (Y 16..235, chroma 16..240) to the full range JPEG decoders assume.
cv::Mat make_lut(bool luma) {
  cv::Mat lut(1, 256, CV_8UC1);
  for (int i = 0; i < 256; ++i) {
    const double v = luma ? (i - 16) * 255.0 / 219.0 : (i - 128) * 255.0 / 224.0 + 128.0;
    lut.at<std::uint8_t>(i) = static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
  }
  return lut;
}

// A colour per track id, stable from frame to frame (golden-ratio hues).
cv::Scalar track_colour(std::uint64_t track_id) {
  if (track_id == 0) return {80, 220, 80};
  const double hue = std::fmod(static_cast<double>(track_id) * 0.618033988749895, 1.0) * 6.0;
  const double x = 1.0 - std::abs(std::fmod(hue, 2.0) - 1.0);
  double r = 0, g = 0, b = 0;
  switch (static_cast<int>(hue)) {
    case 0: r = 1, g = x; break;
    case 1: r = x, g = 1; break;
    case 2: g = 1, b = x; break;
    case 3: g = x, b = 1; break;
    case 4: r = x, b = 1; break;
    default: r = 1, b = x; break;
  }
  return {55 + 200 * b, 55 + 200 * g, 55 + 200 * r};
}

// The limbs between COCO's 17 keypoints (nose, eyes, ears, shoulders, elbows, wrists, hips,
// knees, ankles), and the keypoint score under which a point is not drawn.
constexpr std::array<std::pair<int, int>, 16> kSkeleton = {{{0, 1}, {0, 2}, {1, 3}, {2, 4}, {5, 6}, {5, 7}, {7, 9}, {6, 8},
                                                           {8, 10}, {5, 11}, {6, 12}, {11, 12}, {11, 13}, {13, 15}, {12, 14}, {14, 16}}};
constexpr float kSeen = 0.2f;

// Boxes, track ids and names, keypoints (skeletons of people), scaled by `scale` (output
// pixels per frame pixel).
void draw(cv::Mat& bgr, const FrameResult& result, double scale) {
  const int thickness = std::max(1, static_cast<int>(std::lround(bgr.cols / 640.0)));
  const double font = std::max(0.4, bgr.cols / 1600.0);
  for (const Detection& d : result.detections) {
    const cv::Scalar colour = track_colour(d.track_id);
    const cv::Point p1(static_cast<int>(d.bbox.x1 * scale), static_cast<int>(d.bbox.y1 * scale));
    const cv::Point p2(static_cast<int>(d.bbox.x2 * scale), static_cast<int>(d.bbox.y2 * scale));
    cv::rectangle(bgr, p1, p2, colour, thickness, cv::LINE_AA);
    const auto at = [&](int k) {
      return cv::Point(static_cast<int>(d.keypoints[static_cast<std::size_t>(k)].x * scale),
                       static_cast<int>(d.keypoints[static_cast<std::size_t>(k)].y * scale));
    };
    // A person's 17 COCO keypoints: the skeleton between those the model sees (score over
    // kSeen); a face's keypoints have no scores and are all drawn.
    const bool pose = d.keypoint_count == Detection::kMaxKeypoints;
    const auto seen = [&](int k) { return !pose || d.keypoint_scores[static_cast<std::size_t>(k)] > kSeen; };
    if (pose) {
      for (const auto& [a, b] : kSkeleton) {
        if (seen(a) && seen(b)) cv::line(bgr, at(a), at(b), colour, thickness + 1, cv::LINE_AA);
      }
    }
    for (int k = 0; k < d.keypoint_count; ++k) {
      if (seen(k)) cv::circle(bgr, at(k), thickness + 1, colour, cv::FILLED, cv::LINE_AA);
    }
    std::string label;
    if (d.track_id != 0) {
      label = "#" + std::to_string(d.track_id);
      for (const TrackedObject& t : result.tracks) {
        if (t.track_id == d.track_id && !t.identity.empty()) label += " " + t.identity.name;
      }
    } else {
      label = std::to_string(static_cast<int>(std::lround(d.score * 100))) + "%";
    }
    int baseline = 0;
    const cv::Size size = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, font, thickness, &baseline);
    const cv::Point origin(p1.x, std::max(size.height + 2, p1.y - 3));
    cv::rectangle(bgr, cv::Point(origin.x, origin.y - size.height - 2), cv::Point(origin.x + size.width + 2, origin.y + 2),
                  colour, cv::FILLED);
    cv::putText(bgr, label, cv::Point(origin.x + 1, origin.y), cv::FONT_HERSHEY_SIMPLEX, font, cv::Scalar(20, 20, 20),
                thickness, cv::LINE_AA);
  }
  // Predicted tracks (no detection in this frame) as thin outlines.
  for (const TrackedObject& t : result.tracks) {
    if (!t.predicted) continue;
    cv::rectangle(bgr, cv::Point(static_cast<int>(t.bbox.x1 * scale), static_cast<int>(t.bbox.y1 * scale)),
                  cv::Point(static_cast<int>(t.bbox.x2 * scale), static_cast<int>(t.bbox.y2 * scale)),
                  track_colour(t.track_id), 1, cv::LINE_AA);
  }
}

}  // namespace

struct JpegEncoder::Impl {
  tjhandle tj = nullptr;
  unsigned char* buffer = nullptr;  // tjAlloc'd, grown on demand (TJFLAG_NOREALLOC)
  unsigned long capacity = 0;
  cv::Mat y, u, v, uv_split[2], i420, bgr, scaled;
  cv::Mat lut_luma = make_lut(true), lut_chroma = make_lut(false);

  ~Impl() {
    if (buffer) tjFree(buffer);
    if (tj) tjDestroy(tj);
  }
  Status reserve(int width, int height) {
    const unsigned long needed = tjBufSize(width, height, TJSAMP_420);
    if (needed == static_cast<unsigned long>(-1)) return Error{ErrorCode::invalid_argument, "jpeg: image too large"};
    if (needed <= capacity) return {};
    if (buffer) tjFree(buffer);
    buffer = tjAlloc(static_cast<int>(needed));
    capacity = buffer ? needed : 0;
    if (!buffer) return Error{ErrorCode::resource_exhausted, "jpeg: out of memory"};
    return {};
  }
  Status failed(const char* what) const {
    return Error{ErrorCode::internal, std::string("jpeg: ") + what + ": " + tjGetErrorStr2(tj)};
  }
};

JpegEncoder::JpegEncoder() : impl_(std::make_unique<Impl>()) { impl_->tj = tjInitCompress(); }
JpegEncoder::~JpegEncoder() = default;

Status JpegEncoder::encode(const FrameResult& result, const JpegOptions& options, std::vector<std::uint8_t>& out) {
  Impl& s = *impl_;
  if (!s.tj) return Error{ErrorCode::internal, "jpeg: TurboJPEG did not initialise"};
  if (!result.frame || result.frame->image.empty()) return Error{ErrorCode::invalid_argument, "jpeg: no picture"};
  if (options.quality < 1 || options.quality > 100) return Error{ErrorCode::invalid_argument, "jpeg: quality must be 1..100"};
  if (options.width < 0) return Error{ErrorCode::invalid_argument, "jpeg: width must be positive"};
  const Image& image = result.frame->image;
  const int width = options.width > 0 ? std::min(options.width, image.width) : image.width;
  const int height = std::max(1, static_cast<int>(std::lround(static_cast<double>(image.height) * width / image.width)));
  const bool scaled = width != image.width || height != image.height;
  VIGIL_RETURN_IF_ERROR(s.reserve(width, height));
  unsigned long size = s.capacity;

  if (!options.annotate && image.format != PixelFormat::bgr24) {
    // The decoder's planes, compressed as they are (shrunk and level-stretched if needed).
    cv::Mat planes[3];
    planes[0] = plane_mat(image, 0, CV_8UC1);
    if (image.format == PixelFormat::nv12) {
      cv::split(plane_mat(image, 1, CV_8UC2), s.uv_split);
      planes[1] = s.uv_split[0];
      planes[2] = s.uv_split[1];
    } else {
      planes[1] = plane_mat(image, 1, CV_8UC1);
      planes[2] = plane_mat(image, 2, CV_8UC1);
    }
    cv::Mat* work[3] = {&s.y, &s.u, &s.v};
    const cv::Size sizes[3] = {{width, height}, {(width + 1) / 2, (height + 1) / 2}, {(width + 1) / 2, (height + 1) / 2}};
    for (int p = 0; p < 3; ++p) {
      if (scaled) {
        cv::resize(planes[p], *work[p], sizes[p], 0, 0, cv::INTER_AREA);
        planes[p] = *work[p];
      }
      if (!image.full_range) {
        cv::LUT(planes[p], p == 0 ? s.lut_luma : s.lut_chroma, *work[p]);
        planes[p] = *work[p];
      }
    }
    const unsigned char* src[3] = {planes[0].data, planes[1].data, planes[2].data};
    const int strides[3] = {static_cast<int>(planes[0].step), static_cast<int>(planes[1].step),
                            static_cast<int>(planes[2].step)};
    if (tjCompressFromYUVPlanes(s.tj, src, width, strides, height, TJSAMP_420, &s.buffer, &size, options.quality,
                                TJFLAG_NOREALLOC) != 0) {
      return s.failed("compress");
    }
  } else {
    // To BGR once, at the output size, then draw and compress.
    if (image.format == PixelFormat::bgr24) {
      s.bgr = plane_mat(image, 0, CV_8UC3);
    } else if (image.format == PixelFormat::nv12) {
      cv::cvtColorTwoPlane(plane_mat(image, 0, CV_8UC1), plane_mat(image, 1, CV_8UC2), s.bgr, cv::COLOR_YUV2BGR_NV12);
    } else {
      // cvtColor wants I420 in one buffer: the planes one after the other (even sizes).
      const int w = image.width & ~1, h = image.height & ~1;
      s.i420.create(h * 3 / 2, w, CV_8UC1);
      plane_mat(image, 0, CV_8UC1)(cv::Rect(0, 0, w, h)).copyTo(cv::Mat(h, w, CV_8UC1, s.i420.data));
      const cv::Rect chroma(0, 0, w / 2, h / 2);
      const std::size_t quarter = static_cast<std::size_t>(w / 2) * (h / 2);
      plane_mat(image, 1, CV_8UC1)(chroma).copyTo(cv::Mat(h / 2, w / 2, CV_8UC1, s.i420.data + static_cast<std::size_t>(w) * h));
      plane_mat(image, 2, CV_8UC1)(chroma).copyTo(
          cv::Mat(h / 2, w / 2, CV_8UC1, s.i420.data + static_cast<std::size_t>(w) * h + quarter));
      cv::cvtColor(s.i420, s.bgr, cv::COLOR_YUV2BGR_I420);
    }
    cv::Mat* picture = &s.bgr;
    if (scaled || s.bgr.cols != width || s.bgr.rows != height) {
      cv::resize(s.bgr, s.scaled, cv::Size(width, height), 0, 0, cv::INTER_AREA);
      picture = &s.scaled;
    } else if (image.format == PixelFormat::bgr24 && options.annotate) {
      s.bgr.copyTo(s.scaled);  // never draw on the frame itself
      picture = &s.scaled;
    }
    if (options.annotate) draw(*picture, result, static_cast<double>(width) / image.width);
    if (tjCompress2(s.tj, picture->data, picture->cols, static_cast<int>(picture->step), picture->rows, TJPF_BGR, &s.buffer,
                    &size, TJSAMP_420, options.quality, TJFLAG_NOREALLOC) != 0) {
      return s.failed("compress");
    }
  }
  out.assign(s.buffer, s.buffer + size);
  return {};
}

}  // namespace vigil
