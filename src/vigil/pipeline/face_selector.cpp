#include "vigil/pipeline/face_selector.h"

#include <algorithm>
#include <cmath>

namespace vigil {

bool FaceSelector::kept(const Track& t, std::uint64_t face_id) const {
  for (const FaceCandidate& c : t.best) {
    if (c.face_id == face_id) return true;
  }
  for (const auto& [window, c] : t.windows) {
    if (c.face_id == face_id) return true;
  }
  return false;
}

bool FaceSelector::offer(const FaceCandidate& face, std::vector<std::uint64_t>& dropped) {
  auto [it, inserted] = tracks_.try_emplace(face.track_id);
  Track& t = it->second;
  if (inserted) t.start_ts = face.ts;
  if (config_.all_faces) {
    t.all.push_back(face);
    return true;
  }
  std::vector<std::uint64_t> displaced;
  // The top K.
  if (config_.best_k > 0) {
    const auto at = std::lower_bound(t.best.begin(), t.best.end(), face, better);
    if (at - t.best.begin() < config_.best_k) {
      t.best.insert(at, face);
      if (t.best.size() > static_cast<std::size_t>(config_.best_k)) {
        displaced.push_back(t.best.back().face_id);
        t.best.pop_back();
      }
    }
  }
  // The best of its window.
  if (config_.every_s > 0) {
    const auto window = static_cast<std::int64_t>(std::floor((face.ts - t.start_ts) / config_.every_s));
    auto [w, fresh] = t.windows.try_emplace(window, face);
    if (!fresh && better(face, w->second)) {
      displaced.push_back(w->second.face_id);
      w->second = face;
    }
  }
  for (std::uint64_t id : displaced) {
    if (id != face.face_id && !kept(t, id)) dropped.push_back(id);
  }
  return kept(t, face.face_id);
}

std::vector<FaceCandidate> FaceSelector::finish(std::uint64_t track_id) {
  std::vector<FaceCandidate> out;
  const auto it = tracks_.find(track_id);
  if (it == tracks_.end()) return out;
  Track& t = it->second;
  out = std::move(t.all);
  out.insert(out.end(), t.best.begin(), t.best.end());
  for (const auto& [window, c] : t.windows) out.push_back(c);
  std::sort(out.begin(), out.end(), [](const FaceCandidate& a, const FaceCandidate& b) { return a.face_id < b.face_id; });
  out.erase(std::unique(out.begin(), out.end(), [](const FaceCandidate& a, const FaceCandidate& b) { return a.face_id == b.face_id; }),
            out.end());
  tracks_.erase(it);
  return out;
}

std::vector<std::uint64_t> FaceSelector::open_tracks() const {
  std::vector<std::uint64_t> ids;
  ids.reserve(tracks_.size());
  for (const auto& [id, t] : tracks_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace vigil
