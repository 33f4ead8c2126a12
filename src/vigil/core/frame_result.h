// FrameResult: everything the pipeline learned about one frame, as sinks, the result hook
// and (later) the HTTP state see it.
//
// It owns a FrameRef, so whoever copies a result keeps the picture alive (a snapshot cache
// can keep the newest one without copying pixels). The engine reuses one FrameResult per
// camera (its vectors keep their capacity), so consumers get it by const reference for the
// duration of the call and copy what they keep.
//
// Which frames produce a result: every frame the detector ran on; with tracking and
// `track.emit: every_frame`, also every frame in between, with `detected == false` and the
// tracks' predicted boxes.
//
// With a face stage, a tracked frame whose tracks want an embedding (new track, or a
// better face) passes through the embedder before it is delivered: `faces` holds what was
// embedded and every track carries its identity so far.
#pragma once

#include <string_view>
#include <vector>

#include "vigil/core/detection.h"
#include "vigil/core/face.h"
#include "vigil/core/frame.h"
#include "vigil/core/tracked_object.h"

namespace vigil {

struct FrameResult {
  FrameRef frame;                     // the picture (never empty in a delivered result)
  std::string_view model;             // the detector's name in the config (outlives the run)
  bool detected = false;              // the detector ran on this frame
  Detections detections;              // empty when !detected; track_id set when tracked
  bool tracked = false;               // tracking is on for this camera
  std::vector<TrackedObject> tracks;  // confirmed tracks in this frame
  std::vector<TrackEvent> track_events;  // what changed in this frame
  std::vector<FaceResult> faces;      // faces embedded in this frame (face stage on)
  SteadyTime inference_started{};     // when the batch holding this frame started (detected)
};

}  // namespace vigil
