#include "vigil/track/mot_metrics.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/test_support.h"

namespace vigil {
namespace {

MotBox box(std::uint64_t id, float x, float y = 0, float size = 40, bool ignore = false) {
  return MotBox{id, BBox{x, y, x + size, y + size}, ignore};
}

TEST(MotMetricsTest, PerfectTrackingScoresOne) {
  MotEvaluator eval;
  for (int f = 0; f < 10; ++f) {
    const std::vector<MotBox> gt{box(1, 10.0f * f), box(2, 300.0f - 10.0f * f, 100)};
    const std::vector<MotBox> hyp{box(7, 10.0f * f + 2), box(9, 300.0f - 10.0f * f, 101)};
    eval.add_frame(gt, hyp);
  }
  const MotSummary s = eval.summary();
  EXPECT_EQ(s.frames, 10u);
  EXPECT_EQ(s.gt, 20u);
  EXPECT_EQ(s.matches, 20u);
  EXPECT_EQ(s.id_switches, 0u);
  EXPECT_DOUBLE_EQ(s.mota, 1.0);
  EXPECT_DOUBLE_EQ(s.idf1, 1.0);
  EXPECT_GT(s.motp, 0.8);
}

TEST(MotMetricsTest, AnIdSwitchCostsMotaOneAndIdf1TheFramesAfterIt) {
  MotEvaluator eval;
  for (int f = 0; f < 10; ++f) {
    const std::vector<MotBox> gt{box(1, 0), box(2, 200)};
    const std::vector<MotBox> hyp{box(f < 5 ? 1 : 3, 0), box(2, 200)};
    eval.add_frame(gt, hyp);
  }
  const MotSummary s = eval.summary();
  EXPECT_EQ(s.id_switches, 1u);
  EXPECT_DOUBLE_EQ(s.mota, 1.0 - 1.0 / 20.0);
  EXPECT_EQ(s.idtp, 15u);  // gt 1 keeps one of its two ids (5 frames), gt 2 all 10
  EXPECT_DOUBLE_EQ(s.idf1, 0.75);
  EXPECT_EQ(s.hypothesis_ids, 3u);
}

TEST(MotMetricsTest, MissesAndFalsePositivesCount) {
  MotEvaluator eval;
  eval.add_frame(std::vector<MotBox>{box(1, 0), box(2, 200)}, std::vector<MotBox>{box(1, 0), box(5, 500)});
  const MotSummary s = eval.summary();
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.false_positives, 1u);
  EXPECT_DOUBLE_EQ(s.mota, 0.0);
  EXPECT_DOUBLE_EQ(s.idf1, 0.5);  // 2 * 1 / (2 + 2)
}

TEST(MotMetricsTest, ABoxBelowTheIouThresholdIsAMissAndAFalsePositive) {
  MotEvaluator eval;
  eval.add_frame(std::vector<MotBox>{box(1, 0)}, std::vector<MotBox>{box(1, 25)});  // IoU 0.23
  const MotSummary s = eval.summary();
  EXPECT_EQ(s.matches, 0u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.false_positives, 1u);
}

TEST(MotMetricsTest, AMatchThatStillHoldsIsKeptOverABetterOne) {
  MotEvaluator eval;
  eval.add_frame(std::vector<MotBox>{box(1, 0)}, std::vector<MotBox>{box(4, 0)});
  // Track 8 now fits better, but track 4 still overlaps enough: no switch.
  eval.add_frame(std::vector<MotBox>{box(1, 0)}, std::vector<MotBox>{box(4, 8), box(8, 0)});
  const MotSummary s = eval.summary();
  EXPECT_EQ(s.id_switches, 0u);
  EXPECT_EQ(s.false_positives, 1u);
}

TEST(MotMetricsTest, IgnoredGroundTruthCountsNeitherWay) {
  MotEvaluator eval;
  eval.add_frame(std::vector<MotBox>{box(1, 0), box(2, 200, 0, 40, true)},
                 std::vector<MotBox>{box(1, 0), box(2, 201)});
  eval.add_frame(std::vector<MotBox>{box(1, 0), box(2, 200, 0, 40, true)}, std::vector<MotBox>{box(1, 0)});
  const MotSummary s = eval.summary();
  EXPECT_EQ(s.gt, 2u);
  EXPECT_EQ(s.hypotheses, 2u);
  EXPECT_EQ(s.false_positives, 0u);
  EXPECT_EQ(s.misses, 0u);
  EXPECT_DOUBLE_EQ(s.mota, 1.0);
}

TEST(MotMetricsTest, ReadsMotChallengeText) {
  test::TempDir dir;
  std::ofstream(dir.file("gt.txt")) << "# frame,id,left,top,width,height,consider,class,visibility\n"
                                       "1,1,10,20,30,40,1,1,1.0\n"
                                       "1,2,100,20,30,40,0,1,0.2\r\n"
                                       "\n"
                                       "3, 1, 12.5, 20, 30, 40\n";
  auto seq = read_mot_file(dir.file("gt.txt"));
  ASSERT_TRUE(seq.ok()) << seq.error().message;
  ASSERT_EQ(seq->size(), 2u);
  ASSERT_EQ(seq->at(1).size(), 2u);
  EXPECT_EQ(seq->at(1)[0].id, 1u);
  EXPECT_FLOAT_EQ(seq->at(1)[0].box.x2, 40.0f);
  EXPECT_FLOAT_EQ(seq->at(1)[0].box.y2, 60.0f);
  EXPECT_FALSE(seq->at(1)[0].ignore);
  EXPECT_TRUE(seq->at(1)[1].ignore);
  EXPECT_FLOAT_EQ(seq->at(3)[0].box.x1, 12.5f);
}

TEST(MotMetricsTest, MalformedGroundTruthNamesTheLine) {
  test::TempDir dir;
  std::ofstream(dir.file("bad.txt")) << "1,1,10,20,30,40\n2,1,ten,20,30,40\n";
  auto seq = read_mot_file(dir.file("bad.txt"));
  ASSERT_FALSE(seq.ok());
  EXPECT_EQ(seq.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(seq.error().message.find("bad.txt:2"), std::string::npos) << seq.error().message;

  std::ofstream(dir.file("short.txt")) << "1,1,10,20\n";
  EXPECT_FALSE(read_mot_file(dir.file("short.txt")).ok());
  std::ofstream(dir.file("empty_box.txt")) << "1,1,10,20,0,40\n";
  EXPECT_FALSE(read_mot_file(dir.file("empty_box.txt")).ok());
  EXPECT_EQ(read_mot_file(dir.file("missing.txt")).error().code, ErrorCode::not_found);
}

}  // namespace
}  // namespace vigil
