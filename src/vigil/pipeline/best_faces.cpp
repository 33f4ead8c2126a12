#include "vigil/pipeline/best_faces.h"

#include <algorithm>
#include <cmath>

namespace vigil {

void BestFaces::track(const FrameResult& result) {
  const Frame& frame = *result.frame;
  const double ts = static_cast<double>(frame.pts_ms) / 1000.0;
  for (const TrackedObject& o : result.tracks) {
    if (o.detection < 0 || o.predicted) continue;
    offer(o.track_id, frame, result.detections[static_cast<std::size_t>(o.detection)], ts);
  }
  // A shot cut's ends (every track of the last shot) come first, then the lost tracks'; the
  // tracks seen above are new or go on, so they are not among them.
  for (const TrackEvent& e : result.track_events) {
    if (e.kind == TrackEventKind::removed) end_track(e.track_id);
  }
}

// Scores a tracked face; the selector says whether it is kept, and only a kept face is aligned
// into its chip (measuring is a tenth of aligning; with all_faces every face is aligned at once).
void BestFaces::offer(std::uint64_t track, const Frame& frame, const Detection& d, double ts) {
  const std::size_t chip_values = static_cast<std::size_t>(face_template_.size) * static_cast<std::size_t>(face_template_.size) * 3;
  chip_floats_.resize(chip_values);
  const bool aligned = selector_.keeps_every_face();
  const FaceQuality quality = aligned ? aligner_.align(frame.image, d, chip_floats_.data(), face_template_)
                                      : aligner_.measure(frame.image, d, face_template_);
  const FaceCandidate candidate{next_face_++, track, ts, quality.value()};
  dropped_.clear();
  if (selector_.offer(candidate, dropped_)) {
    if (!aligned) aligner_.align(frame.image, d, chip_floats_.data(), face_template_);
    KeptFace k;
    k.candidate = candidate;
    k.frame = frame.seq;
    k.bbox = d.bbox;
    for (int kp = 0; kp < d.keypoint_count; ++kp) k.keypoints.push_back(d.keypoints[static_cast<std::size_t>(kp)]);
    k.chip.resize(chip_values);
    for (std::size_t v = 0; v < chip_values; ++v) {
      k.chip[v] = static_cast<std::uint8_t>(std::clamp(std::lround(chip_floats_[v]), 0L, 255L));
    }
    kept_[candidate.face_id] = std::move(k);
  }
  for (std::uint64_t id : dropped_) kept_.erase(id);
}

void BestFaces::end_all() {
  for (std::uint64_t id : selector_.open_tracks()) end_track(id);
}

void BestFaces::end_track(std::uint64_t track_id) {
  for (const FaceCandidate& c : selector_.finish(track_id)) {
    auto it = kept_.find(c.face_id);
    if (it == kept_.end()) continue;
    ended_.push_back(std::move(it->second));
    kept_.erase(it);
  }
}

}  // namespace vigil
