// Cadence: which of a camera's frames go to the detector (`detect.every: N` or `detect.fps`).
//
// Live cameras (a newest-wins edge): due_live() is asked on the capture side for every new
// frame, and advance_live() is called by the worker when a frame's inference starts, so the
// next due frame is counted from the frame actually inferred (a slow model does not make
// the camera skip twice). With `fps`, frames are due on a grid of captured times with a
// quarter-interval tolerance for jitter; with `every`, by sequence number, and a sequence
// that restarts (a stream reconnected) is due at once.
// Queued cameras (files): due_queued() puts the frames on a fixed grid of presentation
// times or sequence numbers on the capture side only, so a replay detects the same frames.
//
// Time comes from the frames (captured_steady, pts_ms), never from a clock: tests drive it
// with made-up frames.
// Threading: due_live() and advance_live() may run on different threads (atomics);
// due_queued() on one thread (the capture thread).
#pragma once

#include <atomic>
#include <cstdint>

#include "vigil/core/frame.h"
#include "vigil/pipeline/engine_config.h"

namespace vigil {

class Cadence {
 public:
  // interval_s: the source's nominal frame interval (0 if unknown). Call before frames flow.
  void configure(const DetectConfig& detect, double interval_s);

  bool due_live(const Frame& frame) const;
  void advance_live(const Frame& frame);
  bool due_queued(const Frame& frame);

 private:
  int every_ = 1;
  double fps_ = 0;
  double interval_s_ = 0;
  std::atomic<std::uint64_t> next_seq_{0};
  std::atomic<std::int64_t> next_ns_{0};
  std::int64_t next_pts_ms_ = 0;  // queued cameras, capture thread only
};

}  // namespace vigil
