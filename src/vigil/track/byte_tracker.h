// ByteTracker: multi-object tracking by detection, after ByteTrack (Zhang et al., ECCV 2022,
// "ByteTrack: Multi-Object Tracking by Associating Every Detection Box").
//
// Each update associates the frame's detections with the tracks in two stages: first the
// high-confidence detections against every tracked and lost track, then the low-confidence
// ones against the tracked objects still unmatched (occluded or blurred faces score low but
// still continue their track). Costs are 1 - IoU against each track's Kalman prediction, and
// the matching is the exact minimum-cost one (LinearAssignment). A new track starts
// unconfirmed (tentative): one started by a detection scoring at least new_track_score is
// confirmed by its second match in a row (at once on the tracker's first frame), one started
// by a detection between high_score and new_track_score by its confirm_hits-th; a tentative
// track that misses a frame is dropped. Detections of tentative tracks keep track_id 0. An
// unmatched confirmed track is lost, and removed after `lost_frames` frame steps without a
// match.
//
// Between detections, predict() moves every track by its motion model so frames that skip
// the detector (detect.every, detect.fps) still get boxes, marked predicted.
//
//   ByteTracker tracker(TrackerConfig{});
//   tracker.update(detections, 1, objects, events);   // a frame with detections
//   tracker.predict(1, objects);                      // a frame without
//
// Invariants: track ids come from this instance (1, 2, 3, ...), never from a process-wide
// counter, so every camera numbers its own tracks and ids are never reused in a run. No
// threads, no I/O, no clock: frame steps are passed in. Steady-state calls allocate nothing.
// Threading: one caller at a time (the camera's pipeline).
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "vigil/core/tracked_object.h"
#include "vigil/track/kalman_filter.h"
#include "vigil/track/linear_assignment.h"

namespace vigil {

struct TrackerConfig {
  float high_score = 0.5f;       // detections at or above this go to the first association
  float low_score = 0.1f;        // detections below this are ignored
  float new_track_score = 0.6f;  // an unmatched detection at or above this starts a track
  // Matches in a row that confirm a track started by a detection scoring between high_score
  // and new_track_score (0: such detections start no track).
  int confirm_hits = 3;
  float match_iou = 0.2f;        // first association: minimum IoU with a track's prediction
  float low_match_iou = 0.5f;    // second association (low-confidence detections)
  float confirm_iou = 0.3f;      // an unconfirmed track's second match
  int lost_frames = 30;          // frame steps a lost track is kept before it is removed
  float duplicate_iou = 0.85f;   // a lost track this close to a tracked one is dropped
};

class ByteTracker {
 public:
  explicit ByteTracker(TrackerConfig config = {});

  // Associates one frame's detections. `frame_steps` (>= 1) is how many source frames
  // passed since the previous call (frames replaced or skipped count). Sets
  // detections[i].track_id for matched confirmed tracks. Fills `objects` with the confirmed
  // tracks matched in this frame and appends what changed to `events`.
  void update(std::span<Detection> detections, int frame_steps, std::vector<TrackedObject>& objects,
              std::vector<TrackEvent>& events);

  // A frame without detections: moves the tracks and fills `objects` with the confirmed
  // tracked objects' predicted boxes.
  void predict(int frame_steps, std::vector<TrackedObject>& objects);

  // A new start (a shot cut): every confirmed track ends (a `removed` event each) and the
  // next frame's confident detections are confirmed at once, as on a first frame; ids go on
  // from where they were.
  void end_all(std::vector<TrackEvent>& events);

  // Tracks ever confirmed (the last id handed out).
  std::uint64_t tracks_started() const { return next_id_ - 1; }
  // Tracks in memory now (tracked, unconfirmed and lost).
  std::size_t size() const { return tracks_.size(); }
  const TrackerConfig& config() const { return config_; }

 private:
  enum class State : std::uint8_t { tracked, lost, removed };
  struct Track {
    std::uint64_t id = 0;  // 0 until confirmed
    int class_id = -1;     // of the detection that started it
    int hits = 0;          // matches in a row while tentative
    int hits_needed = 2;   // matches that confirm it
    State state = State::tracked;
    KalmanState kalman;
    BBox predicted_box;  // the prediction associated against this frame
    float score = 0;
    std::int64_t start_frame = 0;
    std::int64_t last_frame = 0;  // last frame with a match
    int detection = -1;           // matched detection in the current frame
  };

  void step(int frame_steps);
  // Matches tracks (indices into tracks_) to detections (indices into dets) with IoU at
  // least min_iou; fills pairs_, unmatched_tracks_ and unmatched_dets_.
  void associate(const std::vector<int>& tracks, const std::vector<int>& detections, std::span<const Detection> dets,
                 float min_iou);
  void match(Track& track, Detection& detection, int detection_index, std::vector<TrackEvent>& events);
  void emit(std::span<const Detection> detections, std::vector<TrackedObject>& objects) const;

  TrackerConfig config_;
  KalmanFilter filter_;
  LinearAssignment assignment_;
  std::vector<Track> tracks_;
  std::int64_t frame_ = 0;
  std::uint64_t next_id_ = 1;

  // Scratch, reused between calls.
  std::vector<int> high_, low_, pool_, remaining_, unconfirmed_;
  std::vector<float> cost_;
  std::vector<int> row_to_col_, col_to_row_;
  std::vector<int> unmatched_tracks_, unmatched_dets_;
  std::vector<std::pair<int, int>> pairs_;
};

}  // namespace vigil
