#include "vigil/harvest/face_tracks.h"

#include <algorithm>
#include <cmath>

namespace vigil {

FaceTracks::FaceTracks(FaceSelectorConfig select, FaceTemplate face_template, std::size_t dim)
    : face_template_(face_template), dim_(dim), selector_(select) {}

void FaceTracks::start_input(std::size_t input) {
  input_ = input;
  global_ids_.clear();
}

void FaceTracks::track(const FrameResult& result) {
  ++counts_.sampled;
  const Frame& frame = *result.frame;
  const double ts = static_cast<double>(frame.pts_ms) / 1000.0;
  for (const TrackedObject& o : result.tracks) {
    if (o.detection < 0 || o.predicted) continue;
    const Detection& d = result.detections[static_cast<std::size_t>(o.detection)];
    auto [it, fresh] = global_ids_.try_emplace(o.track_id, 0);
    if (fresh) {
      it->second = next_track_++;
      TrackRecord& t = tracks_[it->second];
      t.id = it->second;
      t.input = input_;
      t.first_frame = frame.seq;
      t.first_ts = ts;
      t.first_bbox = d.bbox;
    }
    TrackRecord& t = tracks_[it->second];
    t.last_frame = frame.seq;
    t.last_ts = ts;
    t.last_bbox = d.bbox;
    ++t.faces_detected;
    ++counts_.faces_detected;
    offer(it->second, frame, d, ts);
  }
  // A shot cut's ends (every track of the last shot) come first, then the lost tracks'; the
  // tracks seen above are new or go on, so they are not among them.
  for (const TrackEvent& e : result.track_events) {
    if (e.kind != TrackEventKind::removed) continue;
    const auto it = global_ids_.find(e.track_id);
    if (it != global_ids_.end()) end_track(it->second);
  }
}

// Scores a tracked face; the selector says whether it is kept, and only a kept face is aligned
// into its chip (measuring is a tenth of aligning; with all_faces every face is aligned at once).
void FaceTracks::offer(std::uint64_t track, const Frame& frame, const Detection& d, double ts) {
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
    k.input = input_;
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

void FaceTracks::end_input() {
  for (std::uint64_t id : selector_.open_tracks()) end_track(id);
}

void FaceTracks::end_track(std::uint64_t track_id) {
  for (const FaceCandidate& c : selector_.finish(track_id)) {
    auto it = kept_.find(c.face_id);
    if (it == kept_.end()) continue;
    to_embed_.push_back(std::move(it->second));
    kept_.erase(it);
  }
}

void FaceTracks::add_embedded(std::vector<KeptFace>& faces, const std::vector<Embedding>& embeddings) {
  for (std::size_t i = 0; i < faces.size(); ++i) {
    const Embedding& e = embeddings[i];
    KeptFace& f = faces[i];
    TrackRecord& t = tracks_[f.candidate.track_id];
    t.rows.push_back({f.candidate.quality, f.candidate.face_id, faces_.size()});
    t.embedded.push_back(f.candidate.face_id);
    if (f.candidate.quality > t.best_quality) {
      t.best_quality = f.candidate.quality;
      t.best_face = f.candidate.face_id;
    }
    embeddings_.insert(embeddings_.end(), e.begin(), e.end());
    faces_.push_back({std::move(f), faces_.size()});
    ++counts_.faces_embedded;
  }
}

}  // namespace vigil
