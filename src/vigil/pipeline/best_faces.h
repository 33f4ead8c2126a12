// BestFaces: the per-track face policy (a camera's `best_faces`, what `vigil harvest` runs).
// In: each detected and tracked frame of one camera, in frame order. Each tracked face (not
// predicted) is scored from the luma of its aligned chip's centre; the FaceSelector keeps each
// track's best, and only a kept face is aligned into its chip. Out: the kept faces of each
// track when it ends (a removed track event: lost too long, or a shot cut; or end_all() at the
// end of the camera's input), in the order the tracks end, to be embedded in batches across
// tracks (FaceBatch). Nothing waits for the embedder: the frames go on at once.
//
// Face ids count the faces offered, from 1, in frame order and then track order within a frame.
//
// Threading: one thread at a time (the camera's token holder).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "vigil/core/frame_result.h"
#include "vigil/core/status.h"
#include "vigil/pipeline/face_selector.h"
#include "vigil/vision/face_align.h"
#include "vigil/vision/face_embedder.h"

namespace vigil {

// A face the selector kept, with its aligned chip (RGB, 0..255, the template's size square).
struct KeptFace {
  FaceCandidate candidate;  // face id (the camera's), track id (its tracker's), time, quality
  std::uint64_t frame = 0;  // the frame's sequence number
  BBox bbox;
  std::vector<Point2> keypoints;
  std::vector<std::uint8_t> chip;
};

// Kept faces on their way through the embedder: formed in order (seq counts a camera's
// batches from 0), embedded in one model call or answered by EngineHooks::replay_faces, and
// handed to EngineHooks::on_faces in the order they were formed.
struct FaceBatch {
  std::uint64_t seq = 0;
  std::vector<KeptFace> faces;
  std::vector<Embedding> embeddings;  // one per face, L2-normalised, once embedded
  Status status;                      // the model's error, if any (then no embeddings)
  bool replayed = false;              // answered by replay_faces: the model did not run
};

class BestFaces {
 public:
  BestFaces(FaceSelectorConfig select, FaceTemplate face_template) : face_template_(face_template), selector_(select) {}

  // One detected and tracked frame: its tracked faces offered, its removed tracks ended.
  void track(const FrameResult& result);
  // The input ended: every open track ends.
  void end_all();
  // The kept faces of ended tracks, in the order their tracks ended (take them from here).
  std::vector<KeptFace>& ended() { return ended_; }
  std::uint64_t offered() const { return next_face_ - 1; }

 private:
  void offer(std::uint64_t track, const Frame& frame, const Detection& d, double ts);
  void end_track(std::uint64_t track_id);

  const FaceTemplate face_template_;
  FaceSelector selector_;
  FaceAligner aligner_;
  std::vector<float> chip_floats_;
  std::unordered_map<std::uint64_t, KeptFace> kept_;  // by face id
  std::vector<KeptFace> ended_;
  std::vector<std::uint64_t> dropped_;
  std::uint64_t next_face_ = 1;
};

}  // namespace vigil
