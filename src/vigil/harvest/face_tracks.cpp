#include "vigil/harvest/face_tracks.h"

#include <string>

namespace vigil {

void FaceTracks::start_input(std::size_t input) {
  input_ = input;
  face_base_ = counts_.faces_detected;
  global_ids_.clear();
}

void FaceTracks::track(const FrameResult& result) {
  ++counts_.sampled;
  const Frame& frame = *result.frame;
  const double ts = static_cast<double>(frame.pts_ms) / 1000.0;
  for (const TrackedObject& o : result.tracks) {
    if (o.detection < 0 || o.predicted) continue;  // as BestFaces offers them
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
  }
}

Status FaceTracks::add_embedded(FaceBatch& batch) {
  VIGIL_RETURN_IF_ERROR(batch.status);
  if (batch.embeddings.size() != batch.faces.size()) return Error{ErrorCode::internal, "a batch of faces without its embeddings"};
  for (std::size_t i = 0; i < batch.faces.size(); ++i) {
    KeptFace& f = batch.faces[i];
    const auto global = global_ids_.find(f.candidate.track_id);
    if (global == global_ids_.end()) {
      return Error{ErrorCode::internal, "a face of track " + std::to_string(f.candidate.track_id) + ", which no frame showed"};
    }
    f.candidate.track_id = global->second;
    f.candidate.face_id += face_base_;
    const Embedding& e = batch.embeddings[i];
    TrackRecord& t = tracks_[f.candidate.track_id];
    t.rows.push_back({f.candidate.quality, f.candidate.face_id, faces_.size()});
    t.embedded.push_back(f.candidate.face_id);
    if (f.candidate.quality > t.best_quality) {
      t.best_quality = f.candidate.quality;
      t.best_face = f.candidate.face_id;
    }
    embeddings_.insert(embeddings_.end(), e.begin(), e.end());
    faces_.push_back({std::move(f), input_, faces_.size()});
    ++counts_.faces_embedded;
  }
  return {};
}

}  // namespace vigil
