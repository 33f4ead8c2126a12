#include "vigil/concurrency/camera_slot.h"

#include <gtest/gtest.h>

#include <thread>

namespace vigil {
namespace {

TEST(CameraSlotTest, NewestFrameReplacesOlder) {
  CameraSlot<int> slot;
  EXPECT_FALSE(slot.publish(1));
  EXPECT_TRUE(slot.publish(2));
  EXPECT_TRUE(slot.publish(3));
  EXPECT_EQ(slot.take(), 3);
  EXPECT_FALSE(slot.take().has_value());
  EXPECT_EQ(slot.published(), 3u);
  EXPECT_EQ(slot.replaced(), 2u);
}

TEST(CameraSlotTest, TakenFrameIsNotCountedAsReplaced) {
  CameraSlot<int> slot;
  slot.publish(1);
  EXPECT_EQ(slot.take(), 1);
  EXPECT_FALSE(slot.publish(2));
  EXPECT_EQ(slot.replaced(), 0u);
  slot.clear();
  EXPECT_FALSE(slot.has_item());
}

TEST(CameraSlotTest, ConcurrentPublishAndTakeLoseNothingUncounted) {
  CameraSlot<std::uint64_t> slot;
  constexpr std::uint64_t kItems = 100000;
  std::atomic<bool> done{false};
  std::uint64_t taken = 0, last = 0;
  std::thread consumer([&] {
    while (!done.load() || slot.has_item()) {
      if (auto v = slot.take()) {
        EXPECT_GT(*v, last);  // newest wins: values only go up
        last = *v;
        ++taken;
      }
    }
  });
  for (std::uint64_t i = 1; i <= kItems; ++i) slot.publish(i);
  done = true;
  consumer.join();
  EXPECT_EQ(taken + slot.replaced(), kItems);  // every item was taken or counted as replaced
  EXPECT_EQ(last, kItems);                     // the newest always survives
}

}  // namespace
}  // namespace vigil
