#include "vigil/concurrency/batcher.h"

#include <gtest/gtest.h>

#include <string>

namespace vigil {
namespace {

using std::chrono::milliseconds;

const SteadyTime t0 = SteadyTime{} + std::chrono::seconds(100);

TEST(BatcherTest, EmptyEdgeNeitherClosesNorSetsADeadline) {
  Batcher<int> edge({4, milliseconds(5)});
  const BatchDecision d = edge.decide(t0, 1, 8, 0, 2);
  EXPECT_FALSE(d.close);
  EXPECT_EQ(d.wait_until, SteadyTime{});
}

TEST(BatcherTest, WaitsForMoreMembersUntilTheFirstOnesDelayRunsOut) {
  Batcher<int> edge({4, milliseconds(5)});
  edge.push(1, t0);
  edge.push(2, t0 + milliseconds(2));
  BatchDecision d = edge.decide(t0 + milliseconds(3), 1, 8, 0, 1);
  EXPECT_FALSE(d.close);
  EXPECT_EQ(d.wait_until, t0 + milliseconds(5)) << "the oldest member sets the deadline";
  d = edge.decide(t0 + milliseconds(5), 1, 8, 0, 1);
  ASSERT_TRUE(d.close);
  std::vector<int> batch;
  edge.take(d.take, batch);
  EXPECT_EQ(batch, (std::vector<int>{1, 2}));
  EXPECT_TRUE(edge.empty());
}

TEST(BatcherTest, ClosesAtOnceWhenNoOtherMemberCouldJoin) {
  Batcher<int> edge({8, milliseconds(50)});
  edge.push(1, t0);
  edge.push(2, t0);
  // Three members: two ready, one in flight: nobody else can arrive before the deadline.
  const BatchDecision d = edge.decide(t0, 1, 3, 1, 1);
  EXPECT_TRUE(d.close);
  EXPECT_EQ(d.take, 2u);
}

TEST(BatcherTest, ABatchTakesAtMostAFairShareOfTheMembers) {
  Batcher<int> edge({8, milliseconds(5)});
  for (int i = 0; i < 4; ++i) edge.push(i, t0);
  // Four members, two workers: batches of two, so both workers get an equal group.
  const BatchDecision d = edge.decide(t0 + milliseconds(5), 2, 4, 0, 2);
  ASSERT_TRUE(d.close);
  EXPECT_EQ(d.take, 2u);
  std::vector<int> batch;
  edge.take(d.take, batch);
  EXPECT_EQ(batch, (std::vector<int>{0, 1}));
  EXPECT_EQ(edge.size(), 2u);
}

TEST(BatcherTest, RemovedMembersLeaveTheQueueInOrder) {
  Batcher<std::string> edge({8, milliseconds(5)});
  for (const char* id : {"a", "b", "c", "b"}) edge.push(id, t0);
  EXPECT_EQ(edge.remove_if([](const std::string& s) { return s == "b"; }), 2u);
  std::vector<std::string> batch;
  edge.take(8, batch);
  EXPECT_EQ(batch, (std::vector<std::string>{"a", "c"}));
}

TEST(BatcherTest, TakeIfLeavesTheIneligibleInTheirPlaces) {
  Batcher<int> edge({8, milliseconds(5)});
  for (int i = 0; i < 6; ++i) edge.push(i, t0 + milliseconds(i));
  std::vector<int> batch;
  edge.take_if(2, batch, [](int v) { return v % 2 == 1; });
  EXPECT_EQ(batch, (std::vector<int>{1, 3}));
  EXPECT_EQ(edge.oldest(), t0) << "member 0 is still first";
  std::vector<int> rest;
  edge.for_each([&](int v) { rest.push_back(v); });
  EXPECT_EQ(rest, (std::vector<int>{0, 2, 4, 5}));
}

}  // namespace
}  // namespace vigil
