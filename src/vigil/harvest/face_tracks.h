// FaceTracks: the harvest's records of tracks and faces, from what the engine hands over. In:
// each sampled frame's result as the engine tracked it (offline mode, in frame order), and
// each batch of a track's best faces as the engine's face policy kept and embedded them
// (pipeline/best_faces.h), in the order the batches were formed. Out: every track's record
// under a harvest-wide id (in order of first appearance across all inputs), and every
// embedded face's row under a harvest-wide face id.
//
// The engine counts tracks and faces per input; a harvest-wide id is the input's id plus what
// the inputs before it used (a face id: the faces offered before; a track: its first
// appearance), so ids do not depend on how the inputs were split into engine runs.
//
// Threading: one thread (the harvest's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "vigil/core/frame_result.h"
#include "vigil/core/status.h"
#include "vigil/pipeline/best_faces.h"
#include "vigil/vision/face_align.h"

namespace vigil {

// An embedded face (ids harvest-wide), its input, and its row in the embeddings.
struct FaceRecord {
  KeptFace face;
  std::size_t input = 0;
  std::size_t row = 0;
};

struct TrackRecord {
  std::uint64_t id = 0;  // global, in order of first appearance
  std::size_t input = 0;
  std::uint64_t first_frame = 0, last_frame = 0;
  double first_ts = 0, last_ts = 0;
  BBox first_bbox, last_bbox;
  std::uint64_t faces_detected = 0;
  std::vector<std::uint64_t> embedded;  // face ids
  std::uint64_t best_face = 0;
  float best_quality = -1;
  // Its embedded faces' (quality, face id, row), for the track's descriptor.
  struct Embedded {
    float quality;
    std::uint64_t face_id;
    std::size_t row;
  };
  std::vector<Embedded> rows;
};

struct FaceTrackCounts {
  std::uint64_t sampled = 0;         // frames tracked
  std::uint64_t faces_detected = 0;  // tracked faces offered to the selector
  std::uint64_t faces_embedded = 0;
};

class FaceTracks {
 public:
  FaceTracks(FaceTemplate face_template, std::size_t dim) : face_template_(face_template), dim_(dim) {}

  // A new input, tracked afresh (its track and face ids start again).
  void start_input(std::size_t input);
  // What the input's face ids add to make them harvest-wide (the faces offered before it).
  std::uint64_t face_base() const { return face_base_; }
  // One sampled frame of the current input as tracked: each tracked face (not predicted)
  // counted for its track, as the engine's face policy offered it.
  void track(const FrameResult& result);
  // A batch of the current input's kept faces and their embeddings (dim values each), taken
  // into the records in order, under harvest-wide ids. Errors: the batch's (the model's), and
  // a face of a track never seen (the engine's hand-over out of order).
  Status add_embedded(FaceBatch& batch);

  const std::map<std::uint64_t, TrackRecord>& tracks() const { return tracks_; }
  const std::vector<FaceRecord>& faces() const { return faces_; }  // embedded, in row order
  const std::vector<float>& embeddings() const { return embeddings_; }  // rows x dim
  std::size_t dim() const { return dim_; }
  int chip_size() const { return face_template_.size; }
  const FaceTrackCounts& counts() const { return counts_; }

 private:
  const FaceTemplate face_template_;
  const std::size_t dim_;
  std::size_t input_ = 0;
  std::uint64_t face_base_ = 0;
  std::unordered_map<std::uint64_t, std::uint64_t> global_ids_;  // the input's track ids -> global ids
  std::vector<FaceRecord> faces_;
  std::vector<float> embeddings_;
  std::map<std::uint64_t, TrackRecord> tracks_;  // by global id
  std::uint64_t next_track_ = 1;
  FaceTrackCounts counts_;
};

}  // namespace vigil
