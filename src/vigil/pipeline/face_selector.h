// Which faces of a track a camera with a per-track face policy embeds (pipeline/best_faces.h;
// `vigil harvest`): the best K by quality, plus the best of every
// `every_s` seconds of the track (so a long track is seen from more than its best minute), or
// every face with all_faces. Faces are offered as they are detected; the selector says which
// it keeps and which it stops keeping (so their staged crops can go), and hands over a track's
// kept faces when the track ends.
//
// Ordering is total and deterministic: higher quality first, then the earlier face id, so a
// rerun over the same detections keeps the same faces.
//
// Threading: one thread at a time (the camera's token holder).
#pragma once

#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

namespace vigil {

struct FaceSelectorConfig {
  int best_k = 3;        // per track
  double every_s = 10;   // plus the best face of each window this long (0: none)
  bool all_faces = false;
};

struct FaceCandidate {
  std::uint64_t face_id = 0;   // increasing in detection order
  std::uint64_t track_id = 0;
  double ts = 0;               // seconds into the video
  float quality = 0;           // FaceQuality::value()
};

class FaceSelector {
 public:
  explicit FaceSelector(FaceSelectorConfig config) : config_(config) {}

  // Offers a face of its track. Returns whether it is kept now; appends to `dropped` the ids
  // of faces kept before that no longer are.
  bool offer(const FaceCandidate& face, std::vector<std::uint64_t>& dropped);
  // The track ended: its kept faces in face id order. The track is forgotten.
  std::vector<FaceCandidate> finish(std::uint64_t track_id);
  // Tracks with faces offered and not finished, in id order (to finish at the end of input).
  std::vector<std::uint64_t> open_tracks() const;
  // Whether every face offered is kept (all_faces).
  bool keeps_every_face() const { return config_.all_faces; }

 private:
  struct Track {
    double start_ts = 0;
    std::vector<FaceCandidate> best;                 // the top K, best first
    std::map<std::int64_t, FaceCandidate> windows;   // window index -> its best face
    std::vector<FaceCandidate> all;                  // all_faces
  };
  static bool better(const FaceCandidate& a, const FaceCandidate& b) {
    return a.quality > b.quality || (a.quality == b.quality && a.face_id < b.face_id);
  }
  bool kept(const Track& t, std::uint64_t face_id) const;

  FaceSelectorConfig config_;
  std::unordered_map<std::uint64_t, Track> tracks_;
};

}  // namespace vigil
