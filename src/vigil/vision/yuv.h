// BT.601 YUV to RGB in [0, 255], shared by the letterbox and the face aligner; coefficients
// from ITU-R BT.601 (video range scales Y from 16..235 and chroma from 16..240).
#pragma once

namespace vigil {

struct YuvToRgb {
  float cy, cr_r, cb_g, cr_g, cb_b, y_offset;
  static YuvToRgb for_range(bool full_range) {
    if (full_range) return {1.0f, 1.402f, -0.344136f, -0.714136f, 1.772f, 0.0f};
    return {1.164383f, 1.596027f, -0.391762f, -0.812968f, 2.017232f, 16.0f};
  }
};

}  // namespace vigil
