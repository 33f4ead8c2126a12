#include "vigil/identity/agglomerative.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

namespace vigil {
namespace {

Embedding unit(std::vector<float> values) {
  Embedding e(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) e[i] = values[i];
  l2_normalise(e);
  return e;
}

// People: random directions in 128-D; each track of a person is its direction plus noise.
std::vector<Embedding> tracks_of(const std::vector<int>& person_of_track, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  const int people = *std::max_element(person_of_track.begin(), person_of_track.end()) + 1;
  std::vector<std::vector<float>> centres(static_cast<std::size_t>(people), std::vector<float>(128));
  for (auto& c : centres) {
    for (float& v : c) v = gauss(rng);
  }
  std::vector<Embedding> out;
  for (int p : person_of_track) {
    std::vector<float> v = centres[static_cast<std::size_t>(p)];
    const float norm = std::sqrt(static_cast<float>(v.size()));
    for (float& x : v) x += 0.15f * norm * gauss(rng) / std::sqrt(128.0f);
    out.push_back(unit(v));
  }
  return out;
}

TEST(AgglomerativeTest, GroupsTracksByPersonNumberedByFirstAppearance) {
  const std::vector<int> truth = {2, 0, 2, 1, 0, 0, 1, 2, 1, 0};
  const std::vector<Embedding> tracks = tracks_of(truth, 7);
  const std::vector<int> labels = cluster_average_linkage(tracks, 0.6f);
  ASSERT_EQ(labels.size(), truth.size());
  // Person 2 appears first, so it is cluster 0; then person 0, then person 1.
  const std::map<int, int> expected = {{2, 0}, {0, 1}, {1, 2}};
  for (std::size_t i = 0; i < truth.size(); ++i) EXPECT_EQ(labels[i], expected.at(truth[i])) << "track " << i;
  EXPECT_EQ(cluster_average_linkage(tracks, 0.6f), labels) << "the same input, the same labels";
}

TEST(AgglomerativeTest, NothingMergesAboveEverySimilarity) {
  const std::vector<Embedding> tracks = tracks_of({0, 0, 1, 1}, 3);
  EXPECT_EQ(cluster_average_linkage(tracks, 1.01f), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(cluster_average_linkage(tracks, -1.0f), (std::vector<int>{0, 0, 0, 0})) << "everything merges at -1";
  EXPECT_TRUE(cluster_average_linkage({}, 0.5f).empty());
}

// Average linkage does not chain: a, b, c at 0, t, 2t degrees with cos t = 0.9 (cos 2t = 0.62).
// a and b merge; {a, b} to c averages 0.76, under 0.85, so c stays apart (single linkage
// would have joined it at 0.9).
TEST(AgglomerativeTest, AverageLinkageDoesNotChain) {
  const float t = std::acos(0.9f);
  const std::vector<Embedding> tracks = {unit({1, 0}), unit({std::cos(t), std::sin(t)}), unit({std::cos(2 * t), std::sin(2 * t)})};
  EXPECT_EQ(cluster_average_linkage(tracks, 0.85f), (std::vector<int>{0, 0, 1}));
  EXPECT_EQ(cluster_average_linkage(tracks, 0.7f), (std::vector<int>{0, 0, 0}));
}

}  // namespace
}  // namespace vigil
