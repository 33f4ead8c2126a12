// The loop a user writes without vigil, for comparison: one thread per camera that reads a
// frame (cv::VideoCapture for files; live synthetic cameras rendered at their frame rate),
// converts it to BGR, resizes it to the model input with cv::dnn::blobFromImage, runs its
// own model instance at batch 1, counts the faces over the threshold, and repeats. MoveNet
// the same way: letterboxed RGB pixels, people counted on the centre heatmap. Detection
// runs on every frame (or every N-th, from the camera's detect settings). The model library
// keeps its default threads (all cores), as a user's would.
#pragma once

#include <string>

#include "vigil/core/status.h"
#include "vigil/infer/backend.h"
#include "vigil/pipeline/engine_config.h"

namespace vigil {

struct NaiveResult {
  double seconds = 0;
  double frames_per_s = 0;    // frames read, all cameras
  double inferred_per_s = 0;  // model calls, all cameras
  double cpu_cores = 0;
  int threads = 0;            // process threads while measuring
  std::string backend;        // the model's backend, e.g. "opencv-dnn"
};

// Runs the loop on every camera of `config` with its detector model (kind blazeface or movenet) for
// warmup_s, then measures `seconds`. OpenCV DNN is what the usual loop runs.
Result<NaiveResult> run_naive_loop(const EngineConfig& config, double warmup_s, double seconds,
                                   BackendKind backend = BackendKind::opencv);

}  // namespace vigil
