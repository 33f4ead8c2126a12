#include "vigil/concurrency/bounded_queue.h"

#include <gtest/gtest.h>

#include <thread>

namespace vigil {
namespace {

TEST(BoundedQueueTest, BlockPolicyDeliversEverythingInOrder) {
  BoundedQueue<int> queue(2, OverflowPolicy::block);
  std::thread producer([&] {
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(queue.push(i), PushResult::pushed);
    queue.close();
  });
  int expected = 0;
  while (auto v = queue.pop()) EXPECT_EQ(*v, expected++);
  producer.join();
  EXPECT_EQ(expected, 1000);
  EXPECT_EQ(queue.dropped(), 0u);
}

TEST(BoundedQueueTest, DropOldestKeepsTheNewest) {
  BoundedQueue<int> queue(2, OverflowPolicy::drop_oldest);
  queue.push(1);
  queue.push(2);
  EXPECT_EQ(queue.push(3), PushResult::dropped_oldest);
  EXPECT_EQ(queue.try_pop(), 2);
  EXPECT_EQ(queue.try_pop(), 3);
  EXPECT_EQ(queue.dropped(), 1u);
}

TEST(BoundedQueueTest, DropNewestAndRejectKeepTheOldest) {
  BoundedQueue<int> a(1, OverflowPolicy::drop_newest), b(1, OverflowPolicy::reject);
  a.push(1);
  b.push(1);
  EXPECT_EQ(a.push(2), PushResult::dropped_new);
  EXPECT_EQ(b.push(2), PushResult::rejected);
  EXPECT_EQ(a.try_pop(), 1);
  EXPECT_EQ(b.try_pop(), 1);
  EXPECT_EQ(a.dropped(), 1u);
  EXPECT_EQ(b.dropped(), 1u);
}

TEST(BoundedQueueTest, CloseWakesABlockedProducerAndConsumer) {
  BoundedQueue<int> full(1, OverflowPolicy::block), empty(1, OverflowPolicy::block);
  full.push(0);
  PushResult pushed = PushResult::pushed;
  std::optional<int> popped = 7;
  std::thread producer([&] { pushed = full.push(1); });
  std::thread consumer([&] { popped = empty.pop(); });
  full.close();
  empty.close();
  producer.join();
  consumer.join();
  EXPECT_EQ(pushed, PushResult::closed);
  EXPECT_FALSE(popped.has_value());
  EXPECT_EQ(full.pop(), 0);  // what was queued before close still drains
}

}  // namespace
}  // namespace vigil
