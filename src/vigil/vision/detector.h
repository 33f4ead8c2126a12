// Detector: a model family's whole detection step (pre-processing, batched inference,
// post-processing) behind one call, so the scheduler can batch any detector the same way.
//
// Threading: one caller at a time per instance; the engine gives each worker its own.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "vigil/core/frame.h"
#include "vigil/core/status.h"
#include "vigil/core/detection.h"

namespace vigil {

class Detector {
 public:
  virtual ~Detector() = default;
  // results[i] belongs to images[i]; may make several model calls if images exceed max_batch().
  virtual Status detect(std::span<const Image* const> images, std::vector<Detections>& results) = 0;
  virtual int max_batch() const = 0;
};

}  // namespace vigil
