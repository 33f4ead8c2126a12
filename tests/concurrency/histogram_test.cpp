#include "vigil/core/histogram.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(HistogramTest, PercentilesWithinBucketResolution) {
  Histogram h(0.01);
  for (int i = 1; i <= 1000; ++i) h.record(i * 0.1);  // 0.1 .. 100
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_NEAR(h.percentile(0.5), 50.0, 50.0 * 0.1);
  EXPECT_NEAR(h.percentile(0.99), 99.0, 99.0 * 0.1);
  EXPECT_GE(h.percentile(0.99), 99.0);  // an upper bound, never an underestimate
}

TEST(HistogramTest, EmptyIsZero) {
  Histogram h;
  EXPECT_EQ(h.percentile(0.5), 0.0);
}

}  // namespace
}  // namespace vigil
