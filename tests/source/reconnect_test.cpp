#include "vigil/core/reconnect.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

using std::chrono::milliseconds;

TEST(ReconnectBackoffTest, DoublesUpToTheCapWithTwentyPercentJitter) {
  ReconnectBackoff b(milliseconds(250), milliseconds(2000), 7);
  const long expected[] = {250, 500, 1000, 2000, 2000, 2000};
  for (long e : expected) {
    const long wait = b.next().count();
    EXPECT_GE(wait, e * 8 / 10 - 1) << e;
    EXPECT_LE(wait, e * 12 / 10 + 1) << e;
  }
}

TEST(ReconnectBackoffTest, ResetStartsAgainFromTheInitialDelay) {
  ReconnectBackoff b(milliseconds(100), milliseconds(10000), 1);
  for (int i = 0; i < 6; ++i) (void)b.next();
  b.reset();
  EXPECT_LE(b.next().count(), 120);
}

TEST(ReconnectBackoffTest, CamerasWithDifferentSeedsDoNotRetryInStep) {
  ReconnectBackoff a(milliseconds(1000), milliseconds(1000), 1), c(milliseconds(1000), milliseconds(1000), 2);
  int same = 0;
  for (int i = 0; i < 20; ++i) same += a.next() == c.next();
  EXPECT_LT(same, 5);
}

}  // namespace
}  // namespace vigil
