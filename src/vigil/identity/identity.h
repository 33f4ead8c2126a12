// Identity: who a face belongs to, from its embedding.
//
// Gallery: named people, each with one or more embeddings (from photos). A query matches
// the name whose best embedding is most similar, when that similarity reaches `threshold`
// and beats the second-best name by at least `margin`; otherwise it stays unknown.
//
// AnonymousClusters: people not in the gallery get ids ("anon-1", "anon-2", ...) from
// online clustering: a query joins the most similar cluster when the similarity to its
// centroid reaches `threshold`, else it starts a new one. Ids are stable for the run.
//
// TrackIdentities: per camera, what is known about each track: its running mean embedding,
// how often it was embedded, its best face quality and its identity. It decides whether a
// new face of a track is worth embedding (new track, or quality improved by `min_gain`,
// at most `max_embeddings` times).
//
// Threading: Gallery is immutable after loading (any thread). AnonymousClusters takes its
// own mutex (per embedding, not per frame; shared by all cameras so a person keeps one id
// across them). TrackIdentities belongs to one camera's token holder.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "vigil/core/mutex.h"
#include "vigil/core/face.h"

namespace vigil {

struct IdentityConfig {
  // Defaults from `vigil eval faces` with face-api's descriptor: different people on the
  // sample photos reach cosine 0.94, the same face seen twice stays above 0.96.
  float threshold = 0.92f;       // gallery: cosine similarity to accept a name
  float margin = 0.02f;          // gallery: over the second-best name
  float anon_threshold = 0.95f;  // clustering: cosine to join an anonymous cluster (splitting a person beats merging two)
  int max_embeddings = 3;        // per track (K)
  float min_gain = 0.10f;        // re-embed when quality exceeds the best so far by this factor
};

class Gallery {
 public:
  void add(const std::string& name, const Embedding& embedding);
  std::size_t people() const { return names_.size(); }
  std::size_t embeddings() const { return entries_.size(); }
  const std::vector<std::string>& names() const { return names_; }
  // Known identity, or an empty one when below threshold or margin.
  Identity match(const Embedding& query, float threshold, float margin) const;
  // The best and second-best names with their similarities (for evaluation).
  struct Ranking {
    int best = -1, second = -1;
    float best_similarity = -1, second_similarity = -1;
  };
  Ranking rank(const Embedding& query) const;

 private:
  struct Entry {
    int person = 0;
    Embedding embedding{};
  };
  std::vector<std::string> names_;
  std::vector<Entry> entries_;
};

class AnonymousClusters {
 public:
  explicit AnonymousClusters(float threshold) : threshold_(threshold) {}
  // The cluster this embedding joins (updating its centroid), as "anon-N".
  Identity assign(const Embedding& embedding);
  std::size_t clusters() const;

 private:
  float threshold_;
  mutable Mutex mu_;
  std::vector<Embedding> sums_ GUARDED_BY(mu_);  // un-normalised sums; centroid = normalised
  std::vector<Embedding> centroids_ GUARDED_BY(mu_);
};

class TrackIdentities {
 public:
  explicit TrackIdentities(IdentityConfig config) : config_(config) {}
  // Whether a face of this quality is worth embedding for the track now.
  bool wants(std::uint64_t track_id, float quality) const;
  // Records an embedding of the track and resolves its identity (gallery first, then the
  // anonymous clusters, once per track). Returns true when the identity changed.
  bool update(std::uint64_t track_id, float quality, const Embedding& embedding, const Gallery* gallery,
              AnonymousClusters* clusters, Identity& out);
  // The track's identity so far (empty if never embedded).
  const Identity* find(std::uint64_t track_id) const;
  void forget(std::uint64_t track_id) { tracks_.erase(track_id); }
  std::size_t size() const { return tracks_.size(); }

 private:
  struct Track {
    int embedded = 0;
    float best_quality = 0;
    Embedding sum{};
    Identity identity;
  };
  IdentityConfig config_;
  std::unordered_map<std::uint64_t, Track> tracks_;
};

}  // namespace vigil
