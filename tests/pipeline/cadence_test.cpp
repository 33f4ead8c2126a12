#include "vigil/pipeline/cadence.h"

#include <gtest/gtest.h>

#include <vector>

namespace vigil {
namespace {

using std::chrono::milliseconds;

Frame frame_at(std::uint64_t seq, milliseconds captured, std::int64_t pts_ms = 0) {
  Frame f;
  f.seq = seq;
  f.captured_steady = SteadyTime{} + captured + std::chrono::hours(1);
  f.pts_ms = pts_ms;
  return f;
}

DetectConfig every(int n) {
  DetectConfig d;
  d.every = n;
  return d;
}

DetectConfig at_fps(double fps) {
  DetectConfig d;
  d.fps = fps;
  return d;
}

TEST(CadenceTest, QueuedEveryNthFrameIsAFixedGrid) {
  Cadence c;
  c.configure(every(3), 0.04);
  std::vector<std::uint64_t> due;
  for (std::uint64_t s = 0; s < 10; ++s) {
    if (c.due_queued(frame_at(s, milliseconds(40 * s)))) due.push_back(s);
  }
  EXPECT_EQ(due, (std::vector<std::uint64_t>{0, 3, 6, 9}));
}

TEST(CadenceTest, QueuedFpsFollowsPresentationTimes) {
  Cadence c;
  c.configure(at_fps(5), 0.04);  // a 25 fps file detected at 5 fps: every 200 ms of pts
  int due = 0;
  std::vector<std::int64_t> pts;
  for (std::uint64_t s = 0; s < 50; ++s) {
    if (c.due_queued(frame_at(s, milliseconds(0), static_cast<std::int64_t>(40 * s)))) {
      ++due;
      pts.push_back(static_cast<std::int64_t>(40 * s));
    }
  }
  EXPECT_EQ(due, 10);
  EXPECT_EQ(pts[1] - pts[0], 200);
}

TEST(CadenceTest, LiveEveryCountsFromTheFrameActuallyInferred) {
  Cadence c;
  c.configure(every(2), 0.1);
  EXPECT_TRUE(c.due_live(frame_at(0, milliseconds(0))));
  c.advance_live(frame_at(0, milliseconds(0)));
  EXPECT_FALSE(c.due_live(frame_at(1, milliseconds(100))));
  EXPECT_TRUE(c.due_live(frame_at(2, milliseconds(200))));
  // The model was slow: frame 5 is the one inferred; the next due is 7, not 4.
  c.advance_live(frame_at(5, milliseconds(500)));
  EXPECT_FALSE(c.due_live(frame_at(6, milliseconds(600))));
  EXPECT_TRUE(c.due_live(frame_at(7, milliseconds(700))));
}

TEST(CadenceTest, LiveEveryIsDueAtOnceAfterTheSourceRestartsItsNumbering) {
  Cadence c;
  c.configure(every(5), 0.1);
  c.advance_live(frame_at(100, milliseconds(0)));
  EXPECT_FALSE(c.due_live(frame_at(101, milliseconds(100))));
  EXPECT_TRUE(c.due_live(frame_at(0, milliseconds(200)))) << "a reconnected stream starts again at 0";
}

TEST(CadenceTest, LiveFpsIsAGridOfCapturedTimesWithJitterTolerance) {
  Cadence c;
  c.configure(at_fps(2), 0.1);  // 10 fps camera, detect at 2 fps: every 500 ms
  EXPECT_TRUE(c.due_live(frame_at(0, milliseconds(0))));
  c.advance_live(frame_at(0, milliseconds(0)));
  EXPECT_FALSE(c.due_live(frame_at(1, milliseconds(100))));
  EXPECT_FALSE(c.due_live(frame_at(4, milliseconds(400))));
  EXPECT_TRUE(c.due_live(frame_at(5, milliseconds(480)))) << "20 ms early is within a quarter interval";
  c.advance_live(frame_at(5, milliseconds(480)));
  EXPECT_FALSE(c.due_live(frame_at(9, milliseconds(900))));
  EXPECT_TRUE(c.due_live(frame_at(10, milliseconds(1000))));
  // Inferred late (the model was busy): the grid does not fall behind by more than half a period.
  c.advance_live(frame_at(30, milliseconds(3000)));
  EXPECT_FALSE(c.due_live(frame_at(32, milliseconds(3200))));
  EXPECT_TRUE(c.due_live(frame_at(33, milliseconds(3300))));
}

}  // namespace
}  // namespace vigil
