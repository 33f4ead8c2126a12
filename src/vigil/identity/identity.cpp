#include "vigil/identity/identity.h"

#include <algorithm>

namespace vigil {

void Gallery::add(const std::string& name, const Embedding& embedding) {
  auto it = std::find(names_.begin(), names_.end(), name);
  int person = static_cast<int>(it - names_.begin());
  if (it == names_.end()) names_.push_back(name);
  entries_.push_back({person, l2_normalised(embedding)});
}

Gallery::Ranking Gallery::rank(const Embedding& query) const {
  std::vector<float> best(names_.size(), -2.0f);
  for (const Entry& e : entries_) {
    best[static_cast<std::size_t>(e.person)] = std::max(best[static_cast<std::size_t>(e.person)], cosine(query, e.embedding));
  }
  Ranking r;
  for (std::size_t p = 0; p < best.size(); ++p) {
    if (best[p] > r.best_similarity) {
      r.second = r.best;
      r.second_similarity = r.best_similarity;
      r.best = static_cast<int>(p);
      r.best_similarity = best[p];
    } else if (best[p] > r.second_similarity) {
      r.second = static_cast<int>(p);
      r.second_similarity = best[p];
    }
  }
  return r;
}

Identity Gallery::match(const Embedding& query, float threshold, float margin) const {
  const Ranking r = rank(query);
  Identity id;
  if (r.best < 0) return id;
  const float m = r.second < 0 ? r.best_similarity + 1.0f : r.best_similarity - r.second_similarity;
  if (r.best_similarity < threshold || m < margin) return id;
  id.name = names_[static_cast<std::size_t>(r.best)];
  id.known = true;
  id.similarity = r.best_similarity;
  id.margin = r.second < 0 ? 1.0f : m;
  return id;
}

Identity AnonymousClusters::assign(const Embedding& embedding) {
  MutexLock lock(mu_);
  int best = -1;
  float best_similarity = -2.0f;
  for (std::size_t c = 0; c < centroids_.size(); ++c) {
    const float s = cosine(embedding, centroids_[c]);
    if (s > best_similarity) best_similarity = s, best = static_cast<int>(c);
  }
  if (best < 0 || best_similarity < threshold_) {
    sums_.push_back(embedding);
    centroids_.push_back(l2_normalised(embedding));
    best = static_cast<int>(centroids_.size()) - 1;
    best_similarity = 1.0f;
  } else {
    Embedding& sum = sums_[static_cast<std::size_t>(best)];
    accumulate(sum, embedding);
    centroids_[static_cast<std::size_t>(best)] = l2_normalised(sum);
  }
  Identity id;
  id.name = "anon-" + std::to_string(best + 1);
  id.known = false;
  id.similarity = best_similarity;
  return id;
}

std::size_t AnonymousClusters::clusters() const {
  MutexLock lock(mu_);
  return centroids_.size();
}

bool TrackIdentities::wants(std::uint64_t track_id, float quality) const {
  auto it = tracks_.find(track_id);
  if (it == tracks_.end()) return quality > 0;
  const Track& t = it->second;
  if (t.embedded >= config_.max_embeddings) return false;
  return quality > t.best_quality * (1.0f + config_.min_gain);
}

bool TrackIdentities::update(std::uint64_t track_id, float quality, const Embedding& embedding, const Gallery* gallery,
                             AnonymousClusters* clusters, Identity& out) {
  Track& t = tracks_[track_id];
  ++t.embedded;
  t.best_quality = std::max(t.best_quality, quality);
  accumulate(t.sum, embedding);
  const Embedding mean = l2_normalised(t.sum);
  Identity next;
  if (gallery != nullptr && gallery->people() > 0) next = gallery->match(mean, config_.threshold, config_.margin);
  if (next.empty()) {
    if (!t.identity.empty() && !t.identity.known) {
      next = t.identity;  // an anonymous id, once given, stays with the track
    } else if (clusters != nullptr) {
      next = clusters->assign(mean);
    }
  }
  const bool changed = next.name != t.identity.name;
  t.identity = next;
  out = t.identity;
  return changed;
}

const Identity* TrackIdentities::find(std::uint64_t track_id) const {
  auto it = tracks_.find(track_id);
  return it == tracks_.end() ? nullptr : &it->second.identity;
}

}  // namespace vigil
