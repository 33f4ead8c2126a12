#include "vigil/vision/nms.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

Detection box(float x1, float y1, float x2, float y2, float score) {
  Detection d;
  d.bbox = {x1, y1, x2, y2};
  d.score = score;
  d.keypoint_count = 1;
  d.keypoints[0] = {(x1 + x2) / 2, (y1 + y2) / 2};
  return d;
}

TEST(IouTest, KnownOverlaps) {
  EXPECT_FLOAT_EQ(iou({0, 0, 10, 10}, {0, 0, 10, 10}), 1.0f);
  EXPECT_FLOAT_EQ(iou({0, 0, 10, 10}, {5, 0, 15, 10}), 50.0f / 150.0f);
  EXPECT_FLOAT_EQ(iou({0, 0, 10, 10}, {20, 20, 30, 30}), 0.0f);
  EXPECT_FLOAT_EQ(iou({0, 0, 0, 0}, {0, 0, 0, 0}), 0.0f);
}

TEST(NmsTest, WeightedMergesAClusterIntoItsScoreWeightedMean) {
  std::vector<Detection> candidates = {box(0, 0, 10, 10, 0.6f), box(2, 0, 12, 10, 0.9f), box(100, 100, 110, 110, 0.7f)};
  std::vector<Detection> out;
  std::vector<unsigned char> scratch;
  non_max_suppression(candidates, 0.3f, NmsMode::weighted, out, scratch);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FLOAT_EQ(out[0].score, 0.9f);  // the best member's score
  const float x1 = (0.9f * 2 + 0.6f * 0) / 1.5f;
  EXPECT_NEAR(out[0].bbox.x1, x1, 1e-5);
  EXPECT_NEAR(out[0].bbox.x2, x1 + 10, 1e-5);
  EXPECT_NEAR(out[0].keypoints[0].x, x1 + 5, 1e-5);
  EXPECT_FLOAT_EQ(out[1].bbox.x1, 100.0f);
}

TEST(NmsTest, HardKeepsTheBestMemberUnchanged) {
  std::vector<Detection> candidates = {box(0, 0, 10, 10, 0.6f), box(2, 0, 12, 10, 0.9f)};
  std::vector<Detection> out;
  std::vector<unsigned char> scratch;
  non_max_suppression(candidates, 0.3f, NmsMode::hard, out, scratch);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FLOAT_EQ(out[0].bbox.x1, 2.0f);
}

TEST(NmsTest, OverlapAtOrBelowThresholdIsKept) {
  // IoU of these two is 1/3, above 0.3 but not above 0.4.
  std::vector<Detection> candidates = {box(0, 0, 10, 10, 0.8f), box(5, 0, 15, 10, 0.7f)};
  std::vector<Detection> out;
  std::vector<unsigned char> scratch;
  non_max_suppression(candidates, 0.4f, NmsMode::weighted, out, scratch);
  EXPECT_EQ(out.size(), 2u);
}

TEST(NmsTest, EmptyInputGivesEmptyOutput) {
  std::vector<Detection> candidates, out = {box(0, 0, 1, 1, 1)};
  std::vector<unsigned char> scratch;
  non_max_suppression(candidates, 0.3f, NmsMode::weighted, out, scratch);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace vigil
