#include "vigil/concurrency/edge.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace vigil {
namespace {

TEST(EdgeTest, NewestWinsOfOneKeepsTheNewestAndCountsTheReplaced) {
  Edge<int> edge({EdgeOverflow::newest_wins, 1});
  EXPECT_EQ(edge.push(1), PushResult::pushed);
  EXPECT_EQ(edge.push(2), PushResult::dropped_oldest);
  EXPECT_EQ(edge.push(3), PushResult::dropped_oldest);
  EXPECT_TRUE(edge.has_item());
  EXPECT_EQ(edge.take(), 3);
  EXPECT_FALSE(edge.take().has_value());
  EXPECT_EQ(edge.replaced(), 2u);
}

TEST(EdgeTest, NewestWinsOfThreeKeepsTheThreeNewestInOrder) {
  Edge<int> edge({EdgeOverflow::newest_wins, 3});
  for (int i = 1; i <= 5; ++i) edge.push(i);  // never waits
  EXPECT_EQ(edge.replaced(), 2u);
  EXPECT_EQ(edge.take(), 3);
  EXPECT_EQ(edge.take(), 4);
  EXPECT_EQ(edge.take(), 5);
  EXPECT_FALSE(edge.has_item());
}

TEST(EdgeTest, TakeIfLeavesAnItemThatDoesNotQualify) {
  for (const EdgeSpec spec : {EdgeSpec{EdgeOverflow::newest_wins, 1}, EdgeSpec{EdgeOverflow::queue, 2}}) {
    Edge<int> edge(spec);
    edge.push(7);
    EXPECT_FALSE(edge.take_if([](int v) { return v > 7; }).has_value());
    EXPECT_TRUE(edge.has_item());
    EXPECT_EQ(edge.take_if([](int v) { return v == 7; }), 7);
    EXPECT_FALSE(edge.has_item());
  }
}

TEST(EdgeTest, AQueueMakesTheProducerWaitAndLosesNothing) {
  Edge<int> edge({EdgeOverflow::queue, 2});
  EXPECT_EQ(edge.spec().capacity, 2u);
  edge.push(1);
  edge.push(2);
  std::atomic<bool> third_in{false};
  std::thread producer([&] {
    EXPECT_EQ(edge.push(3), PushResult::pushed);  // waits for room
    third_in = true;
  });
  // The producer cannot finish before a take makes room: it is blocked or not started.
  EXPECT_FALSE(third_in.load());
  EXPECT_EQ(edge.take(), 1);
  producer.join();
  EXPECT_TRUE(third_in.load());
  EXPECT_EQ(edge.take(), 2);
  EXPECT_EQ(edge.take(), 3);
  EXPECT_EQ(edge.replaced(), 0u);
}

TEST(EdgeTest, CloseWakesAWaitingProducerAndRefusesLaterPushes) {
  Edge<int> queue({EdgeOverflow::queue, 1});
  queue.push(1);
  std::thread producer([&] { EXPECT_EQ(queue.push(2), PushResult::closed); });
  queue.close();
  producer.join();
  EXPECT_EQ(queue.take(), 1);  // what was held still drains
  EXPECT_FALSE(queue.take().has_value());

  Edge<int> slot({EdgeOverflow::newest_wins, 1});
  slot.close();
  EXPECT_EQ(slot.push(1), PushResult::closed);
  EXPECT_FALSE(slot.has_item());
}

TEST(EdgeTest, ClearDropsWithoutCountingAndZeroCapacityMeansOne) {
  Edge<int> edge({EdgeOverflow::queue, 0});
  EXPECT_EQ(edge.spec().capacity, 1u);
  edge.push(1);
  edge.clear();
  EXPECT_FALSE(edge.has_item());
  EXPECT_EQ(edge.replaced(), 0u);
}

}  // namespace
}  // namespace vigil
