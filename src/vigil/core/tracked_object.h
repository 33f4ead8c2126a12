// TrackedObject and TrackEvent: what a tracker says about one frame. They live in core so
// that results, sinks and the event bus can carry them without depending on track/.
#pragma once

#include <cstdint>

#include "vigil/core/detection.h"
#include "vigil/core/face.h"

namespace vigil {

// One confirmed track in one frame.
struct TrackedObject {
  std::uint64_t track_id = 0;  // unique per camera for the whole run, from 1
  BBox bbox;                   // the filter's estimate (smoothed), in source-frame pixels
  float score = 0;             // score of the last detection matched to the track
  int detection = -1;          // index of the matched detection in this frame, -1 if none
  bool predicted = false;      // no detection this frame: the box is the motion model's guess
  std::uint32_t age_frames = 0;  // frame steps since the track started
  Identity identity;             // who it is, once its face was embedded (face stage on)
};

enum class TrackEventKind : std::uint8_t {
  started,  // a track was confirmed (its id is new)
  lost,     // no detection matched a tracked object; it may come back
  refound,  // a lost track matched again
  removed,  // lost for longer than the buffer: gone for good
};
const char* to_string(TrackEventKind kind);

struct TrackEvent {
  TrackEventKind kind = TrackEventKind::started;
  std::uint64_t track_id = 0;
  BBox bbox;          // last known box
  int class_id = -1;  // the class of the detection that started the track (-1: none)
};

}  // namespace vigil
