// What the eval commands share: their error exit and the detector they run on still photos.
#pragma once

#include <memory>
#include <string>

#include "vigil/core/status.h"
#include "vigil/vision/blazeface.h"

namespace vigil {

// Prints "vigil: error: MESSAGE" to stderr and returns `code` (the command's exit status).
int eval_fail(const std::string& message, int code = 1);

// BlazeFace 256 for still photos: one image per call, one intra-op thread, faces scoring
// at least 0.6 (the clear ones).
Result<std::unique_ptr<BlazeFace>> photo_face_detector(const std::string& model_path);

}  // namespace vigil
