// JpegEncoder: a frame (and optionally what the pipeline found in it) to JPEG bytes with
// TurboJPEG.
//
// Without annotations the frame's own YUV planes are compressed as they are (4:2:0, no
// colour conversion): video-range frames get their levels stretched to the JPEG (full)
// range through a lookup table, and a smaller `width` shrinks each plane with area
// averaging first. With annotations the picture goes to BGR once, boxes, track ids, names
// and keypoints are drawn on it, and that is compressed.
//
// Not thread-safe: one encoder per thread (it keeps a TurboJPEG handle and scratch planes).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "vigil/core/frame_result.h"
#include "vigil/core/status.h"

namespace vigil {

struct JpegOptions {
  int quality = 80;       // 1..100
  int width = 0;          // output width in pixels, height to keep the aspect; 0: the frame's
  bool annotate = false;  // draw detections, tracks, names and keypoints
};

class JpegEncoder {
 public:
  JpegEncoder();
  ~JpegEncoder();
  JpegEncoder(const JpegEncoder&) = delete;
  JpegEncoder& operator=(const JpegEncoder&) = delete;

  // Replaces `out` with the JPEG of result.frame. Errors: invalid_argument for options out
  // of range or a frame with no picture, internal when TurboJPEG fails.
  Status encode(const FrameResult& result, const JpegOptions& options, std::vector<std::uint8_t>& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil
