#include "vigil/pipeline/face_selector.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

std::vector<std::uint64_t> ids(const std::vector<FaceCandidate>& faces) {
  std::vector<std::uint64_t> out;
  for (const FaceCandidate& f : faces) out.push_back(f.face_id);
  return out;
}

TEST(FaceSelectorTest, KeepsTheBestKAndSaysWhichItLetsGo) {
  FaceSelector selector({2, 0, false});
  std::vector<std::uint64_t> dropped;
  const float quality[] = {0.5f, 0.9f, 0.3f, 0.7f, 0.95f};
  const bool keep[] = {true, true, false, true, true};
  const std::vector<std::vector<std::uint64_t>> drops = {{}, {}, {}, {1}, {4}};
  for (std::uint64_t id = 1; id <= 5; ++id) {
    dropped.clear();
    EXPECT_EQ(selector.offer({id, 7, 0.1 * static_cast<double>(id), quality[id - 1]}, dropped), keep[id - 1]) << "face " << id;
    EXPECT_EQ(dropped, drops[id - 1]) << "face " << id;
  }
  EXPECT_EQ(selector.open_tracks(), std::vector<std::uint64_t>{7});
  EXPECT_EQ(ids(selector.finish(7)), (std::vector<std::uint64_t>{2, 5}));
  EXPECT_TRUE(selector.open_tracks().empty()) << "a finished track is forgotten";
  EXPECT_TRUE(selector.finish(7).empty());
}

TEST(FaceSelectorTest, ALongTrackKeepsTheBestOfEachWindowToo) {
  FaceSelector selector({1, 1.0, false});
  std::vector<std::uint64_t> dropped;
  EXPECT_TRUE(selector.offer({1, 3, 10.0, 0.9f}, dropped));   // window 0, the best overall
  EXPECT_FALSE(selector.offer({2, 3, 10.5, 0.2f}, dropped));  // window 0, worse
  EXPECT_TRUE(selector.offer({3, 3, 11.2, 0.3f}, dropped));   // window 1
  EXPECT_TRUE(selector.offer({4, 3, 11.5, 0.4f}, dropped));   // window 1, better: 3 goes
  EXPECT_EQ(dropped, std::vector<std::uint64_t>{3});
  EXPECT_TRUE(selector.offer({5, 3, 12.1, 0.1f}, dropped));   // window 2
  EXPECT_EQ(ids(selector.finish(3)), (std::vector<std::uint64_t>{1, 4, 5}));
}

// A face pushed out of the top K stays while it is still its window's best.
TEST(FaceSelectorTest, AFaceKeptForEitherReasonIsNotDropped) {
  FaceSelector selector({1, 10.0, false});
  std::vector<std::uint64_t> dropped;
  EXPECT_TRUE(selector.offer({1, 1, 0.0, 0.5f}, dropped));
  EXPECT_TRUE(selector.offer({2, 1, 15.0, 0.9f}, dropped));  // new top 1, window 1
  EXPECT_TRUE(dropped.empty()) << "face 1 is still window 0's best";
  EXPECT_EQ(ids(selector.finish(1)), (std::vector<std::uint64_t>{1, 2}));
}

TEST(FaceSelectorTest, TiesGoToTheEarlierFaceAndTracksAreSeparate) {
  FaceSelector selector({1, 0, false});
  std::vector<std::uint64_t> dropped;
  EXPECT_TRUE(selector.offer({1, 1, 0.0, 0.5f}, dropped));
  EXPECT_FALSE(selector.offer({2, 1, 0.1, 0.5f}, dropped)) << "equal quality: the earlier face stays";
  EXPECT_TRUE(selector.offer({3, 2, 0.1, 0.1f}, dropped)) << "another track has its own best";
  EXPECT_TRUE(dropped.empty());
  EXPECT_EQ(selector.open_tracks(), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(ids(selector.finish(2)), std::vector<std::uint64_t>{3});
  EXPECT_EQ(ids(selector.finish(1)), std::vector<std::uint64_t>{1});
}

TEST(FaceSelectorTest, AllFacesKeepsEveryFace) {
  FaceSelector selector({1, 0, true});
  std::vector<std::uint64_t> dropped;
  for (std::uint64_t id = 1; id <= 6; ++id) EXPECT_TRUE(selector.offer({id, 4, 0.0, 0.1f * static_cast<float>(id % 3)}, dropped));
  EXPECT_TRUE(dropped.empty());
  EXPECT_EQ(ids(selector.finish(4)), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
}

}  // namespace
}  // namespace vigil
