// Letterbox: fits a frame into a square model input, keeping its aspect ratio, and writes
// it as normalised RGB floats (NHWC) straight from the frame's own planes.
//
// For YUV frames there is no full-resolution colour conversion: each plane is resized to
// the model's size once (area averaging when shrinking) and converted to RGB per model
// pixel (BT.601, video or full range): video range at an even size through OpenCV's
// vectorised I420/NV12 converters, anything else by a per-pixel loop. The padding is black.
#pragma once

#include <memory>

#include "vigil/core/frame.h"
#include "vigil/core/detection.h"

namespace vigil {

// Where the frame landed inside the square input; maps model pixels back to frame pixels.
struct LetterboxTransform {
  float scale = 1;  // model pixels per frame pixel
  float pad_x = 0;  // model pixels of padding on the left
  float pad_y = 0;  // and on the top
  Point2 to_frame(float x_model, float y_model) const { return {(x_model - pad_x) / scale, (y_model - pad_y) / scale}; }
};

LetterboxTransform letterbox_transform(int frame_width, int frame_height, int size);

// Value range the model expects.
enum class InputRange {
  minus_one_to_one,  // x / 127.5 - 1 (MediaPipe)
  zero_to_one,       // x / 255 (Ultralytics)
  insightface,       // (x - 127.5) / 128 (InsightFace detectors)
  pixels,            // x, 0..255 (graphs that normalise inside, as MoveNet)
};

// Scratch planes reused from call to call (one per thread that pre-processes), so steady
// state allocates nothing.
class LetterboxScratch {
 public:
  LetterboxScratch();
  ~LetterboxScratch();
  LetterboxScratch(LetterboxScratch&&) noexcept;
  LetterboxScratch& operator=(LetterboxScratch&&) noexcept;
  struct Planes;
  Planes& planes() { return *planes_; }

 private:
  std::unique_ptr<Planes> planes_;
};

// Writes image into dst: size*size*3 floats, RGB, NHWC. Returns the transform.
LetterboxTransform letterbox_rgb(const Image& image, int size, InputRange range, float* dst, LetterboxScratch& scratch);

}  // namespace vigil
