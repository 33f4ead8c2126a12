#include "vigil/pipeline/cadence.h"

#include <algorithm>

namespace vigil {

namespace {

std::int64_t to_ns(SteadyTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

void Cadence::configure(const DetectConfig& detect, double interval_s) {
  every_ = std::max(1, detect.every);
  fps_ = detect.fps;
  interval_s_ = interval_s;
}

bool Cadence::due_live(const Frame& frame) const {
  if (fps_ > 0) {
    const double tolerance_s = interval_s_ > 0 ? interval_s_ * 0.25 : 0.005;
    return to_ns(frame.captured_steady) + static_cast<std::int64_t>(tolerance_s * 1e9) >= next_ns_.load();
  }
  // A seq below the last detected one means the source restarted its numbering (a stream
  // reconnected): due at once, or the camera would wait until seq caught up again.
  const std::uint64_t next = next_seq_.load();
  return frame.seq >= next || frame.seq + static_cast<std::uint64_t>(every_) < next;
}

void Cadence::advance_live(const Frame& frame) {
  if (fps_ > 0) {
    const auto period = static_cast<std::int64_t>(1e9 / fps_);
    const std::int64_t captured = to_ns(frame.captured_steady);
    const std::int64_t next = next_ns_.load();
    next_ns_.store(std::max(next == 0 ? captured + period : next + period, captured + period / 2));
  } else {
    next_seq_.store(frame.seq + static_cast<std::uint64_t>(every_));
  }
}

bool Cadence::due_queued(const Frame& frame) {
  if (fps_ > 0) {
    if (frame.pts_ms + 1 < next_pts_ms_) return false;
    next_pts_ms_ = std::max(next_pts_ms_ + static_cast<std::int64_t>(1000.0 / fps_), frame.pts_ms);
    return true;
  }
  return frame.seq % static_cast<std::uint64_t>(every_) == 0;
}

}  // namespace vigil
