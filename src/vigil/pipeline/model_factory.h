// Turns a model's config into its instance, by its kind in the table of
// pipeline/model_kinds.h. The engine makes one per worker through it (unless a test's hook
// stands in), and so do the harvest and the benchmarks, so a kind added to the table runs live
// and in a harvest alike.
#pragma once

#include <memory>

#include "vigil/core/status.h"
#include "vigil/pipeline/engine_config.h"
#include "vigil/vision/detector.h"
#include "vigil/vision/face_embedder.h"

namespace vigil {

// A detector of config.kind; invalid_argument for an embedder's config.
Result<std::unique_ptr<Detector>> make_detector(const ModelConfig& config);

// The face embedder of a face_embedder config.
Result<std::unique_ptr<FaceEmbedder>> make_embedder(const ModelConfig& config);

}  // namespace vigil
