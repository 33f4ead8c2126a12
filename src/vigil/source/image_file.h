// Reads a still picture (JPEG, PNG, ...) into an owned YUV420P Image, the layout the live
// sources produce, so photos (a gallery, an evaluation set) go through the same
// pre-processing and alignment as video frames.
#pragma once

#include <memory>
#include <string>

#include "vigil/core/frame.h"
#include "vigil/core/status.h"

namespace vigil {

struct StillImage {
  std::unique_ptr<ByteStorage> storage;  // owns the planes
  Image image;                           // even width and height (an odd last row/column is dropped)
};

// invalid_argument when the file is missing or not a picture. scale resizes (area
// averaging when shrinking) and mirror flips left-right: a second view of the same faces.
Result<StillImage> read_image_file(const std::string& path, double scale = 1.0, bool mirror = false);

}  // namespace vigil
