// FaceTracks: the harvest's face policy, after the engine's detector and tracker. In: each
// sampled frame's result as the engine tracked it (offline mode, in frame order). Out: the
// faces to embed, each track's best as the selector ranks them, handed over when the track
// ends (a removed track event: lost too long, or a shot cut) or its input ends; and, once
// embedded, every track's record and every face's row.
//
// It owns the selection state: the FaceSelector, the aligned chips of the faces it keeps
// until they are embedded, and the tracks' records under global ids (in order of first
// appearance across all inputs).
//
// Threading: one thread (the harvest's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "vigil/core/frame.h"
#include "vigil/core/frame_result.h"
#include "vigil/harvest/face_selector.h"
#include "vigil/vision/detector.h"
#include "vigil/vision/face_align.h"
#include "vigil/vision/face_embedder.h"

namespace vigil {

// A face the selector keeps, with its aligned chip (RGB, the template's size square).
struct KeptFace {
  FaceCandidate candidate;
  std::size_t input = 0;
  std::uint64_t frame = 0;
  BBox bbox;
  std::vector<Point2> keypoints;
  std::vector<std::uint8_t> chip;
};

// An embedded face and its row in the embeddings.
struct FaceRecord {
  KeptFace face;
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
  FaceTracks(FaceSelectorConfig select, FaceTemplate face_template, std::size_t dim);

  // A new input, tracked afresh (its track ids start again; the last input's tracks ended).
  void start_input(std::size_t input);
  // One sampled frame of the current input as tracked: each tracked face (not predicted)
  // scored and offered to the selector (a face it keeps is aligned); the tracks removed in it end.
  void track(const FrameResult& result);
  // The input ended: every open track ends with it.
  void end_input();
  // The faces of ended tracks, waiting for the embedder, in the order their tracks ended.
  std::vector<KeptFace>& to_embed() { return to_embed_; }
  // Embedded faces (taken from to_embed(), in order) and their embeddings (dim values each).
  void add_embedded(std::vector<KeptFace>& faces, const std::vector<Embedding>& embeddings);

  const std::map<std::uint64_t, TrackRecord>& tracks() const { return tracks_; }
  const std::vector<FaceRecord>& faces() const { return faces_; }  // embedded, in row order
  const std::vector<float>& embeddings() const { return embeddings_; }  // rows x dim
  std::size_t dim() const { return dim_; }
  int chip_size() const { return face_template_.size; }
  const FaceTrackCounts& counts() const { return counts_; }

 private:
  void end_track(std::uint64_t track_id);
  void offer(std::uint64_t track, const Frame& frame, const Detection& d, double ts);

  const FaceTemplate face_template_;
  const std::size_t dim_;
  std::size_t input_ = 0;
  FaceSelector selector_;
  FaceAligner aligner_;
  std::vector<float> chip_floats_;
  std::unordered_map<std::uint64_t, std::uint64_t> global_ids_;  // the input's track ids -> global ids
  std::unordered_map<std::uint64_t, KeptFace> kept_;              // by face id
  std::vector<KeptFace> to_embed_;
  std::vector<FaceRecord> faces_;
  std::vector<float> embeddings_;
  std::map<std::uint64_t, TrackRecord> tracks_;  // by global id
  std::uint64_t next_face_ = 1, next_track_ = 1;
  std::vector<std::uint64_t> dropped_;
  FaceTrackCounts counts_;
};

}  // namespace vigil
