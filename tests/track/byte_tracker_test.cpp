#include "vigil/track/byte_tracker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

// Counts heap allocations made by this thread while `g_counting` is set, to check that the
// tracker's steady state allocates nothing.
namespace {
thread_local bool g_counting = false;
std::atomic<int> g_allocations{0};
}  // namespace
// GCC pairs the replaced operator new with free() across inlining and warns; both sides here
// are malloc/free, so the pairing is right.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  if (g_counting) g_allocations.fetch_add(1);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace vigil {
namespace {

Detection det(float x, float y, float size = 40, float score = 0.9f) {
  Detection d;
  d.bbox = {x, y, x + size, y + size};
  d.score = score;
  return d;
}

class ByteTrackerTest : public ::testing::Test {
 protected:
  void update(std::vector<Detection> dets) {
    detections_ = std::move(dets);
    tracker_.update(detections_, 1, objects_, events_);
  }
  int count_events(TrackEventKind kind) const {
    return static_cast<int>(std::count_if(events_.begin(), events_.end(), [&](const TrackEvent& e) { return e.kind == kind; }));
  }
  ByteTracker tracker_;
  std::vector<Detection> detections_;
  std::vector<TrackedObject> objects_;
  std::vector<TrackEvent> events_;
};

TEST_F(ByteTrackerTest, FirstFrameDetectionsAreConfirmedAtOnce) {
  update({det(0, 0), det(200, 0)});
  ASSERT_EQ(objects_.size(), 2u);
  EXPECT_EQ(detections_[0].track_id, 1u);
  EXPECT_EQ(detections_[1].track_id, 2u);
  EXPECT_EQ(count_events(TrackEventKind::started), 2);
}

// A shot cut: every confirmed track ends (removed, with its id), an unconfirmed one goes
// without an event, and the next frame starts afresh with the ids going on.
TEST_F(ByteTrackerTest, EndAllEndsEveryTrackAndTheIdsGoOn) {
  update({det(0, 0)});
  update({det(2, 0), det(200, 0)});  // 200: unconfirmed
  ASSERT_EQ(tracker_.size(), 2u);
  events_.clear();
  tracker_.end_all(events_);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].kind, TrackEventKind::removed);
  EXPECT_EQ(events_[0].track_id, 1u);
  EXPECT_EQ(tracker_.size(), 0u);
  update({det(2, 0)});  // the same place, someone else: a new id, confirmed at once
  ASSERT_EQ(objects_.size(), 1u);
  EXPECT_EQ(objects_[0].track_id, 2u);
  EXPECT_EQ(count_events(TrackEventKind::started), 1);
  EXPECT_EQ(tracker_.tracks_started(), 2u);
}

TEST_F(ByteTrackerTest, LaterTracksNeedASecondMatchToBeConfirmed) {
  update({});
  update({det(0, 0)});
  EXPECT_TRUE(objects_.empty());
  EXPECT_EQ(detections_[0].track_id, 0u);
  update({det(2, 0)});
  ASSERT_EQ(objects_.size(), 1u);
  EXPECT_EQ(objects_[0].track_id, 1u);
  EXPECT_EQ(objects_[0].detection, 0);
  EXPECT_EQ(count_events(TrackEventKind::started), 1);
}

TEST_F(ByteTrackerTest, AOneFrameFalsePositiveNeverGetsAnId) {
  update({det(0, 0)});
  update({det(0, 0), det(500, 500)});  // the second box appears once
  update({det(0, 0)});
  update({det(0, 0)});
  EXPECT_EQ(tracker_.tracks_started(), 1u);
  EXPECT_EQ(tracker_.size(), 1u);
}

TEST_F(ByteTrackerTest, CrossingObjectsKeepTheirIds) {
  // A moves right, B moves left on nearly the same row; they overlap for several frames.
  std::uint64_t id_a = 0, id_b = 0;
  for (int t = 0; t <= 40; ++t) {
    const float xa = 4.0f * static_cast<float>(t), xb = 160.0f - 4.0f * static_cast<float>(t);
    update({det(xa, 0), det(xb, 12)});
    if (t == 0) {
      id_a = detections_[0].track_id;
      id_b = detections_[1].track_id;
    }
    ASSERT_EQ(detections_[0].track_id, id_a) << "frame " << t;
    ASSERT_EQ(detections_[1].track_id, id_b) << "frame " << t;
  }
  EXPECT_EQ(tracker_.tracks_started(), 2u);
}

TEST_F(ByteTrackerTest, AnOccludedObjectIsLostThenRefoundWithItsId) {
  for (int t = 0; t < 10; ++t) update({det(3.0f * static_cast<float>(t), 0)});
  const std::uint64_t id = detections_[0].track_id;
  for (int t = 10; t < 15; ++t) {
    update({});
    if (t == 10) {
      EXPECT_EQ(count_events(TrackEventKind::lost), 1);
    }
  }
  EXPECT_TRUE(objects_.empty());
  update({det(3.0f * 15, 0)});  // where its motion model expects it
  ASSERT_EQ(objects_.size(), 1u);
  EXPECT_EQ(objects_[0].track_id, id);
  EXPECT_EQ(count_events(TrackEventKind::refound), 1);
  EXPECT_EQ(tracker_.tracks_started(), 1u);
}

TEST_F(ByteTrackerTest, ALostTrackIsRemovedAfterTheBufferAndIdsAreNeverReused) {
  ByteTracker tracker(TrackerConfig{.lost_frames = 5});
  std::vector<Detection> d = {det(0, 0)};
  tracker.update(d, 1, objects_, events_);
  std::vector<Detection> none;
  for (int t = 0; t < 7; ++t) tracker.update(none, 1, objects_, events_);
  EXPECT_EQ(count_events(TrackEventKind::removed), 1);
  EXPECT_EQ(tracker.size(), 0u);
  d = {det(0, 0)};
  tracker.update(d, 1, objects_, events_);
  tracker.update(d, 1, objects_, events_);
  ASSERT_EQ(objects_.size(), 1u);
  EXPECT_EQ(objects_[0].track_id, 2u);
}

TEST_F(ByteTrackerTest, LowConfidenceDetectionsContinueTracksButStartNone) {
  update({det(0, 0)});
  update({det(2, 0, 40, 0.3f), det(300, 300, 40, 0.3f)});  // the face blurs; a weak stray box
  ASSERT_EQ(objects_.size(), 1u);
  EXPECT_EQ(objects_[0].track_id, 1u);
  EXPECT_EQ(detections_[0].track_id, 1u);
  EXPECT_EQ(detections_[1].track_id, 0u);
  EXPECT_EQ(count_events(TrackEventKind::lost), 0);
  update({det(300, 300, 40, 0.3f)});
  update({det(300, 300, 40, 0.3f)});
  EXPECT_EQ(tracker_.tracks_started(), 1u);
}

// A face scored between high_score (0.5) and new_track_score (0.6) in every frame: a
// tentative track, confirmed by its third match in a row (confirm_hits), even on the first
// frame; until then its detection has no id. A confident one beside it needs two.
TEST_F(ByteTrackerTest, AMidScoreObjectIsTrackedAfterConfirmHitsFrames) {
  update({});
  update({det(0, 0, 40, 0.55f), det(300, 0, 40, 0.9f)});
  EXPECT_TRUE(objects_.empty());
  EXPECT_EQ(detections_[0].track_id, 0u);
  update({det(1, 0, 40, 0.55f), det(301, 0, 40, 0.9f)});
  ASSERT_EQ(objects_.size(), 1u) << "the confident one: its second match";
  EXPECT_EQ(detections_[0].track_id, 0u);
  EXPECT_NE(detections_[1].track_id, 0u);
  update({det(2, 0, 40, 0.55f), det(302, 0, 40, 0.9f)});
  ASSERT_EQ(objects_.size(), 2u) << "the mid-score one: its third";
  EXPECT_NE(detections_[0].track_id, 0u);
  EXPECT_EQ(tracker_.tracks_started(), 2u);

  ByteTracker first(TrackerConfig{});  // on a first frame too: no id at once below new_track_score
  std::vector<Detection> one{det(0, 0, 40, 0.55f)};
  first.update(one, 1, objects_, events_);
  EXPECT_EQ(one[0].track_id, 0u);
}

// A mid-score box that skips a frame starts over; confirm_hits 0 starts no track from one.
TEST_F(ByteTrackerTest, AMidScoreTentativeTrackMustMatchInARow) {
  update({});
  update({det(0, 0, 40, 0.55f)});
  update({det(0, 0, 40, 0.55f)});
  update({});
  update({det(0, 0, 40, 0.55f)});
  update({det(0, 0, 40, 0.55f)});
  EXPECT_EQ(tracker_.tracks_started(), 0u);
  update({det(0, 0, 40, 0.55f)});
  EXPECT_EQ(tracker_.tracks_started(), 1u);

  TrackerConfig off;
  off.confirm_hits = 0;
  ByteTracker never(off);
  for (int i = 0; i < 5; ++i) {
    std::vector<Detection> one{det(0, 0, 40, 0.55f)};
    never.update(one, 1, objects_, events_);
  }
  EXPECT_EQ(never.tracks_started(), 0u);
}

TEST_F(ByteTrackerTest, PredictMovesTracksAndMarksThemPredicted) {
  for (int t = 0; t < 10; ++t) update({det(5.0f * static_cast<float>(t), 0)});
  tracker_.predict(2, objects_);
  ASSERT_EQ(objects_.size(), 1u);
  EXPECT_TRUE(objects_[0].predicted);
  EXPECT_EQ(objects_[0].detection, -1);
  EXPECT_NEAR(objects_[0].bbox.x1, 5.0f * 11, 2.0f);
  update({det(5.0f * 12, 0)});  // the next detection continues the same track
  ASSERT_EQ(objects_.size(), 1u);
  EXPECT_FALSE(objects_[0].predicted);
  EXPECT_EQ(objects_[0].track_id, 1u);
}

TEST_F(ByteTrackerTest, EachInstanceNumbersItsOwnTracks) {
  ByteTracker a, b;
  std::vector<Detection> da = {det(0, 0)}, db = {det(100, 100)};
  a.update(da, 1, objects_, events_);
  b.update(db, 1, objects_, events_);
  EXPECT_EQ(da[0].track_id, 1u);
  EXPECT_EQ(db[0].track_id, 1u);
}

TEST_F(ByteTrackerTest, SteadyStateUpdatesAllocateNothing) {
  std::vector<Detection> dets;
  for (int i = 0; i < 20; ++i) dets.push_back(det(60.0f * static_cast<float>(i), 0));
  for (int t = 0; t < 5; ++t) tracker_.update(dets, 1, objects_, events_);
  events_.reserve(64);
  g_allocations = 0;
  g_counting = true;
  for (int t = 0; t < 20; ++t) {
    for (auto& d : dets) d.bbox.x1 += 1, d.bbox.x2 += 1;
    events_.clear();
    tracker_.update(dets, 1, objects_, events_);
    tracker_.predict(1, objects_);
  }
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0);
  EXPECT_EQ(objects_.size(), 20u);
}

}  // namespace
}  // namespace vigil
