#include "vigil/identity/identity.h"

#include <gtest/gtest.h>

#include <cmath>

namespace vigil {
namespace {

// A unit vector mostly along axis `axis`, tilted toward axis `toward` by `tilt` radians.
Embedding unit(int axis, int toward = 1, float tilt = 0) {
  Embedding e(128);
  e[static_cast<std::size_t>(axis)] = std::cos(tilt);
  e[static_cast<std::size_t>(toward)] += std::sin(tilt);
  return e;
}

TEST(GalleryTest, MatchesTheNearestNameAboveThresholdAndMargin) {
  Gallery g;
  g.add("ada", unit(0));
  g.add("ada", unit(0, 5, 0.2f));
  g.add("bob", unit(1));
  EXPECT_EQ(g.people(), 2u);
  EXPECT_EQ(g.embeddings(), 3u);
  const Identity hit = g.match(unit(0, 2, 0.1f), 0.9f, 0.05f);
  EXPECT_EQ(hit.name, "ada");
  EXPECT_TRUE(hit.known);
  EXPECT_NEAR(hit.similarity, std::cos(0.1f), 1e-4);
  EXPECT_GT(hit.margin, 0.5f);
  EXPECT_TRUE(g.match(unit(3), 0.9f, 0.05f).empty());  // nobody close
  // Half-way between ada and bob: similar enough to both, but no margin.
  Embedding between(128);
  between[0] = between[1] = std::sqrt(0.5f);
  EXPECT_TRUE(g.match(between, 0.5f, 0.05f).empty());
}

TEST(AnonymousClustersTest, SamePersonKeepsOneIdOthersGetNewOnes) {
  AnonymousClusters c(0.9f);
  EXPECT_EQ(c.assign(unit(0)).name, "anon-1");
  EXPECT_EQ(c.assign(unit(1)).name, "anon-2");
  EXPECT_EQ(c.assign(unit(0, 4, 0.2f)).name, "anon-1");
  EXPECT_EQ(c.assign(unit(1, 6, 0.3f)).name, "anon-2");
  EXPECT_EQ(c.clusters(), 2u);
  EXPECT_FALSE(c.assign(unit(0)).known);
}

TEST(TrackIdentitiesTest, EmbedsANewTrackThenOnlyBetterFacesUpToK) {
  IdentityConfig config;
  config.max_embeddings = 2;
  config.min_gain = 0.1f;
  TrackIdentities t(config);
  EXPECT_TRUE(t.wants(7, 0.5f));
  Identity id;
  AnonymousClusters clusters(0.9f);
  EXPECT_TRUE(t.update(7, 0.5f, unit(0), nullptr, &clusters, id));
  EXPECT_EQ(id.name, "anon-1");
  EXPECT_FALSE(t.wants(7, 0.52f));  // not 10% better
  EXPECT_TRUE(t.wants(7, 0.6f));
  EXPECT_FALSE(t.update(7, 0.6f, unit(0, 3, 0.1f), nullptr, &clusters, id));  // same anonymous id
  EXPECT_FALSE(t.wants(7, 0.99f));  // K = 2 reached
  ASSERT_NE(t.find(7), nullptr);
  EXPECT_EQ(t.find(7)->name, "anon-1");
  t.forget(7);
  EXPECT_EQ(t.find(7), nullptr);
}

TEST(TrackIdentitiesTest, AGalleryNameReplacesAnAnonymousId) {
  IdentityConfig config;
  config.threshold = 0.9f;
  config.margin = 0.05f;
  TrackIdentities t(config);
  Gallery g;
  g.add("ada", unit(0));
  AnonymousClusters clusters(0.9f);
  Identity id;
  // First face: far from ada (anonymous); second, much better and close to ada: the mean
  // moves to ada.
  EXPECT_TRUE(t.update(1, 0.3f, unit(0, 1, 0.6f), &g, &clusters, id));
  EXPECT_FALSE(id.known);
  EXPECT_TRUE(t.update(1, 0.9f, unit(0, 1, -0.3f), &g, &clusters, id));
  EXPECT_TRUE(id.known);
  EXPECT_EQ(id.name, "ada");
}

}  // namespace
}  // namespace vigil
