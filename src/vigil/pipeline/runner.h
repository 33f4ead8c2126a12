// Runner: the first end-to-end path. Reads every camera in turn, detects faces in
// cross-camera batches (one model call per model per round), and writes one result per
// processed frame to every sink.
//
//   camera 0 ─┐
//   camera 1 ─┼─ round: newest frame of each ─▶ batch per model ─▶ BlazeFace ─▶ sinks
//   camera N ─┘
//
// This is a single-threaded loop: a slow camera slows the round. The live engine with
// decoupled capture and a scheduler (ARCHITECTURE.md decisions 1-6) replaces it.
//
// Invariants: per camera, frames are processed in order; a file camera's frames are all
// processed (none skipped); a camera that fails stops the run with its id in the error.
// Threading: run() on one thread; request_stop() from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vigil/core/status.h"
#include "vigil/pipeline/engine_config.h"

namespace vigil {

struct CameraStats {
  std::string id;
  std::uint64_t frames = 0;             // frames read
  std::uint64_t frames_detected = 0;    // frames run through the detector
  std::uint64_t frames_with_faces = 0;  // ...with at least one detection
  std::uint64_t detections = 0;
  bool finished = false;                // reached end of stream
};

struct RunStats {
  std::vector<CameraStats> cameras;
  std::uint64_t model_calls = 0;
  std::uint64_t model_items = 0;
  double wall_seconds = 0;
  double cpu_seconds = 0;
  std::uint64_t frames() const;
  std::uint64_t frames_with_faces() const;
  std::uint64_t detections() const;
};

class Runner {
 public:
  // Opens every source, model and sink; fails with the first problem, naming the camera,
  // model or sink.
  static Result<std::unique_ptr<Runner>> create(const EngineConfig& config);
  ~Runner();

  // Runs until every camera has ended, duration_s has passed, or request_stop() is called.
  // Returns the first camera or sink error.
  Status run(std::optional<double> duration_s);
  void request_stop();
  const RunStats& stats() const { return stats_; }

 private:
  struct Impl;
  explicit Runner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  RunStats stats_;
};

}  // namespace vigil
