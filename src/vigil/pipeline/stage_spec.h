// StageSpec: what a stage of the live pipeline declares about itself, as data: how work
// waits for it (its input edge per camera: newest-wins or queue, and how much), whether it
// batches across cameras (and with what policy), and which parts of the FrameResult it fills.
// The engine builds its edges and batchers from these declarations, and Engine::pipeline()
// returns a camera's chain of them, so what is logged at start is what runs.
//
//   capture ─[newest-wins 1]▶ detect (batch ≤ 8, 2 ms: +detections) ─inline▶ track (+tracks)
//           ─[queue 1]▶ embed (batch ≤ 16, 5 ms: +faces +identities) ─inline▶ deliver
//   a camera with best_faces (the harvest): track ─inline▶ select best faces ─inline▶ deliver,
//           and the kept faces of ended tracks ─[batches of max_batch]▶ embed ─▶ on_faces
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vigil/concurrency/batch_policy.h"
#include "vigil/concurrency/edge.h"

namespace vigil {

// Parts of a FrameResult (core/frame_result.h) a stage fills.
enum ResultPart : std::uint32_t {
  kDetections = 1u << 0,      // detections (boxes, scores, keypoints)
  kTracks = 1u << 1,          // tracks, track events, track_id per detection
  kPredictedTracks = 1u << 2, // tracks of frames the detector skipped (Kalman prediction)
  kFaces = 1u << 3,           // faces with embeddings and quality
  kIdentities = 1u << 4,      // identity per track and face (gallery name or anonymous id)
};

enum class StageKind { capture, detect, track, select, embed, deliver };
std::string_view to_string(StageKind kind);

struct StageSpec {
  StageKind kind = StageKind::capture;
  std::string name;                  // the camera's id (capture) or the model's name
  // How a camera's work waits for this stage; none: the stage runs inline, on the thread
  // that finished the previous one, in frame order.
  std::optional<EdgeSpec> input;
  std::optional<BatchPolicy> batch;  // set: batches across cameras with this policy
  std::uint32_t adds = 0;            // ResultPart bits
  // Offline (EngineConfig::offline): each call is one camera's run of this many frames due
  // (fewer at its end), whatever the timing; 0: batches as `batch` says.
  std::size_t run = 0;
};

// One line: "capture cam0 -[newest-wins 1]-> detect faces (batch<=8, 2 ms) +detections -> ...";
// offline: "... -[queue 8]-> detect faces (runs of 8; +detections) -> ...".
std::string describe(const std::vector<StageSpec>& chain);

}  // namespace vigil
