#include "vigil/track/byte_tracker.h"

#include <algorithm>

namespace vigil {

ByteTracker::ByteTracker(TrackerConfig config) : config_(config) {}

void ByteTracker::step(int frame_steps) {
  const int steps = std::max(1, frame_steps);
  frame_ += steps;
  for (Track& t : tracks_) {
    // A lost track keeps drifting with its velocity but stops growing or shrinking
    // (ByteTrack zeroes the height velocity of tracks that are not tracked).
    if (t.state != State::tracked) t.kalman.mean(7) = 0;
    for (int i = 0; i < steps; ++i) filter_.predict(t.kalman);
    t.predicted_box = KalmanFilter::to_box(t.kalman);
    t.detection = -1;
  }
}

void ByteTracker::associate(const std::vector<int>& tracks, const std::vector<int>& detections,
                            std::span<const Detection> dets, float min_iou) {
  pairs_.clear();
  unmatched_tracks_.clear();
  unmatched_dets_.clear();
  const int rows = static_cast<int>(tracks.size());
  const int cols = static_cast<int>(detections.size());
  cost_.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols));
  for (int r = 0; r < rows; ++r) {
    const BBox& box = tracks_[static_cast<std::size_t>(tracks[static_cast<std::size_t>(r)])].predicted_box;
    for (int c = 0; c < cols; ++c) {
      cost_[static_cast<std::size_t>(r * cols + c)] = 1.0f - iou(box, dets[static_cast<std::size_t>(detections[static_cast<std::size_t>(c)])].bbox);
    }
  }
  // A pair matches when its cost is below the limit, i.e. IoU > min_iou.
  assignment_.solve(cost_, rows, cols, 1.0f - min_iou, row_to_col_, col_to_row_);
  for (int r = 0; r < rows; ++r) {
    const int c = row_to_col_[static_cast<std::size_t>(r)];
    if (c >= 0) {
      pairs_.emplace_back(tracks[static_cast<std::size_t>(r)], detections[static_cast<std::size_t>(c)]);
    } else {
      unmatched_tracks_.push_back(tracks[static_cast<std::size_t>(r)]);
    }
  }
  for (int c = 0; c < cols; ++c) {
    if (col_to_row_[static_cast<std::size_t>(c)] < 0) unmatched_dets_.push_back(detections[static_cast<std::size_t>(c)]);
  }
}

void ByteTracker::match(Track& track, Detection& detection, int detection_index, std::vector<TrackEvent>& events) {
  filter_.update(track.kalman, KalmanFilter::to_measurement(detection.bbox));
  track.score = detection.score;
  track.last_frame = frame_;
  track.detection = detection_index;
  if (track.state == State::lost) events.push_back({TrackEventKind::refound, track.id, detection.bbox, track.class_id});
  track.state = State::tracked;
  if (track.id == 0 && ++track.hits >= track.hits_needed) {  // a tentative track's confirming match
    track.id = next_id_++;
    events.push_back({TrackEventKind::started, track.id, detection.bbox, track.class_id});
  }
  detection.track_id = track.id;
}

void ByteTracker::end_all(std::vector<TrackEvent>& events) {
  for (const Track& t : tracks_) {
    if (t.id != 0 && t.state != State::removed) {
      events.push_back({TrackEventKind::removed, t.id, KalmanFilter::to_box(t.kalman), t.class_id});
    }
  }
  tracks_.clear();
  frame_ = 0;
}

void ByteTracker::update(std::span<Detection> dets, int frame_steps, std::vector<TrackedObject>& objects,
                         std::vector<TrackEvent>& events) {
  const bool first_frame = frame_ == 0;
  step(frame_steps);

  high_.clear();
  low_.clear();
  for (std::size_t i = 0; i < dets.size(); ++i) {
    dets[i].track_id = 0;
    if (dets[i].score >= config_.high_score) {
      high_.push_back(static_cast<int>(i));
    } else if (dets[i].score > config_.low_score) {
      low_.push_back(static_cast<int>(i));
    }
  }
  pool_.clear();
  unconfirmed_.clear();
  for (std::size_t t = 0; t < tracks_.size(); ++t) {
    (tracks_[t].id == 0 ? unconfirmed_ : pool_).push_back(static_cast<int>(t));
  }

  // 1. High-confidence detections against every confirmed track, tracked or lost.
  associate(pool_, high_, dets, config_.match_iou);
  for (auto [t, d] : pairs_) match(tracks_[static_cast<std::size_t>(t)], dets[static_cast<std::size_t>(d)], d, events);
  remaining_.clear();
  for (int t : unmatched_tracks_) {
    if (tracks_[static_cast<std::size_t>(t)].state == State::tracked) remaining_.push_back(t);
  }
  std::vector<int>& high_left = high_;  // reuse: the high detections still unmatched
  high_left.assign(unmatched_dets_.begin(), unmatched_dets_.end());

  // 2. Low-confidence detections against the tracked objects still unmatched.
  associate(remaining_, low_, dets, config_.low_match_iou);
  for (auto [t, d] : pairs_) match(tracks_[static_cast<std::size_t>(t)], dets[static_cast<std::size_t>(d)], d, events);
  for (int t : unmatched_tracks_) {
    Track& track = tracks_[static_cast<std::size_t>(t)];
    track.state = State::lost;
    events.push_back({TrackEventKind::lost, track.id, track.predicted_box, track.class_id});
  }

  // 3. Unconfirmed tracks get one chance to be confirmed by a high detection.
  associate(unconfirmed_, high_left, dets, config_.confirm_iou);
  for (auto [t, d] : pairs_) match(tracks_[static_cast<std::size_t>(t)], dets[static_cast<std::size_t>(d)], d, events);
  for (int t : unmatched_tracks_) tracks_[static_cast<std::size_t>(t)].state = State::removed;

  // 4. New tentative tracks from the high detections nobody claimed; on the very first frame
  //    the confident ones are confirmed at once (there is nothing they could be confused with).
  for (int d : unmatched_dets_) {
    Detection& det = dets[static_cast<std::size_t>(d)];
    const bool confident = det.score >= config_.new_track_score;
    if (!confident && config_.confirm_hits <= 0) continue;
    Track track;
    track.hits = 1;
    track.class_id = det.class_id;
    track.hits_needed = confident ? 2 : std::max(2, config_.confirm_hits);
    track.kalman = filter_.initiate(KalmanFilter::to_measurement(det.bbox));
    track.predicted_box = det.bbox;
    track.score = det.score;
    track.start_frame = frame_;
    track.last_frame = frame_;
    track.detection = d;
    if (first_frame && confident) {
      track.id = next_id_++;
      det.track_id = track.id;
      events.push_back({TrackEventKind::started, track.id, det.bbox, track.class_id});
    }
    tracks_.push_back(track);
  }

  // 5. Lost too long: removed. A lost track overlapping a tracked one is a duplicate of it.
  for (Track& t : tracks_) {
    if (t.state == State::lost && frame_ - t.last_frame > config_.lost_frames) {
      t.state = State::removed;
      events.push_back({TrackEventKind::removed, t.id, KalmanFilter::to_box(t.kalman), t.class_id});
    }
  }
  for (Track& lost : tracks_) {
    if (lost.state != State::lost) continue;
    const BBox lost_box = KalmanFilter::to_box(lost.kalman);
    for (const Track& tracked : tracks_) {
      if (tracked.state != State::tracked || tracked.id == 0) continue;
      if (iou(lost_box, KalmanFilter::to_box(tracked.kalman)) > config_.duplicate_iou) {
        lost.state = State::removed;
        events.push_back({TrackEventKind::removed, lost.id, lost_box, lost.class_id});
        break;
      }
    }
  }
  std::erase_if(tracks_, [](const Track& t) { return t.state == State::removed; });
  emit(dets, objects);
}

void ByteTracker::predict(int frame_steps, std::vector<TrackedObject>& objects) {
  step(frame_steps);
  emit({}, objects);
}

void ByteTracker::emit(std::span<const Detection> dets, std::vector<TrackedObject>& objects) const {
  objects.clear();
  for (const Track& t : tracks_) {
    if (t.state != State::tracked || t.id == 0) continue;
    TrackedObject o;
    o.track_id = t.id;
    o.bbox = KalmanFilter::to_box(t.kalman);
    o.score = t.score;
    o.detection = t.detection;
    o.predicted = t.detection < 0 || static_cast<std::size_t>(t.detection) >= dets.size();
    o.age_frames = static_cast<std::uint32_t>(frame_ - t.start_frame);
    objects.push_back(o);
  }
}

}  // namespace vigil
