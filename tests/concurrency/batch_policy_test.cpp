#include "vigil/concurrency/batch_policy.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

const SteadyTime t0 = SteadyTime{} + std::chrono::seconds(100);

TEST(BatchPolicyTest, ClosesWhenFull) {
  const BatchPolicy policy{4, milliseconds(10)};
  const BatchDecision d = decide_batch(policy, 4, t0, t0);
  EXPECT_TRUE(d.close);
  EXPECT_EQ(d.take, 4u);
}

TEST(BatchPolicyTest, TakesAtMostMaxBatch) {
  const BatchDecision d = decide_batch({4, milliseconds(10)}, 9, t0, t0);
  EXPECT_TRUE(d.close);
  EXPECT_EQ(d.take, 4u);
}

TEST(BatchPolicyTest, WaitsUntilTheDelayAfterTheFirstMember) {
  const BatchDecision d = decide_batch({4, milliseconds(10)}, 2, t0, t0 + milliseconds(3));
  EXPECT_FALSE(d.close);
  EXPECT_EQ(d.wait_until, t0 + milliseconds(10));
}

TEST(BatchPolicyTest, ClosesPartialBatchOnDelay) {
  const BatchDecision d = decide_batch({4, milliseconds(10)}, 2, t0, t0 + milliseconds(10));
  EXPECT_TRUE(d.close);
  EXPECT_EQ(d.take, 2u);
}

TEST(BatchPolicyTest, WaitIsFlooredAtOneMillisecond) {
  const BatchDecision d = decide_batch({4, microseconds(1500)}, 1, t0, t0 + microseconds(1000));
  EXPECT_FALSE(d.close);
  EXPECT_EQ(d.wait_until, t0 + microseconds(2000));
}

TEST(BatchPolicyTest, NothingReadyMeansNoBatch) {
  EXPECT_FALSE(decide_batch({4, milliseconds(10)}, 0, t0, t0 + std::chrono::hours(1)).close);
}

TEST(BatchPolicyTest, ReadyCamerasAreSharedAmongIdleWorkers) {
  const BatchPolicy policy{8, milliseconds(2)};
  EXPECT_EQ(decide_batch(policy, 4, t0, t0 + milliseconds(2), 2).take, 2u);
  EXPECT_EQ(decide_batch(policy, 5, t0, t0 + milliseconds(2), 2).take, 3u);
  EXPECT_EQ(decide_batch(policy, 1, t0, t0 + milliseconds(2), 2).take, 1u);
  EXPECT_EQ(decide_batch(policy, 20, t0, t0, 2).take, 8u);  // full batches stay full
}

TEST(BatchPolicyTest, BatchesTakeAtMostTheFairShareOfCamerasPerWorker) {
  // Four cameras, two workers: fair share 2. Three ready while the fourth is in flight on the
  // other worker: take 2, not 3, so the groups stay 2 and 2.
  const BatchDecision d = decide_batch({8, milliseconds(10)}, 3, t0, t0, 1, 0, 2);
  EXPECT_TRUE(d.close);
  EXPECT_EQ(d.take, 2u);
  // A fair share's worth of ready cameras is a full batch: no waiting for max_delay.
  EXPECT_TRUE(decide_batch({8, milliseconds(10)}, 2, t0, t0, 1, 5, 2).close);
  EXPECT_FALSE(decide_batch({8, milliseconds(10)}, 1, t0, t0, 1, 5, 2).close);
}

TEST(BatchPolicyTest, ClosesAtOnceWhenNoOtherCameraCouldJoin) {
  const BatchDecision d = decide_batch({8, milliseconds(10)}, 2, t0, t0, 1, 0);
  EXPECT_TRUE(d.close);
  EXPECT_EQ(d.take, 2u);
  EXPECT_FALSE(decide_batch({8, milliseconds(10)}, 2, t0, t0, 1, 1).close);
}

TEST(BatchPolicyTest, ZeroDelayClosesAtOnce) {
  const BatchDecision d = decide_batch({8, microseconds(0)}, 1, t0, t0);
  EXPECT_TRUE(d.close);
  EXPECT_EQ(d.take, 1u);
}

}  // namespace
}  // namespace vigil
