#include "vigil/core/event_bus.h"

#include <gtest/gtest.h>

#include <thread>

namespace vigil {
namespace {

Event track_event(std::uint64_t track_id) {
  Event e;
  e.kind = EventKind::track_started;
  e.camera = "lobby";
  e.track_id = track_id;
  return e;
}

TEST(EventBusTest, IdsIncreaseAndReadResumesAfterAnId) {
  EventBus bus;
  EXPECT_EQ(bus.publish(track_event(1)), 1u);
  EXPECT_EQ(bus.publish(track_event(2)), 2u);
  EXPECT_EQ(bus.publish(track_event(3)), 3u);
  std::vector<Event> out;
  EXPECT_TRUE(bus.read(1, 10, out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].id, 2u);
  EXPECT_EQ(out[1].track_id, 3u);
  EXPECT_NE(out[0].at, SystemTime{}) << "publish stamps the time";
  out.clear();
  EXPECT_TRUE(bus.read(3, 10, out));
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(bus.read(0, 1, out));
  EXPECT_EQ(out.size(), 1u) << "at most max";
}

TEST(EventBusTest, TheRingDropsTheOldestAndReadSaysSomethingWasMissed) {
  EventBus bus(3);
  for (std::uint64_t i = 1; i <= 5; ++i) bus.publish(track_event(i));
  EXPECT_EQ(bus.dropped(), 2u);
  std::vector<Event> out;
  EXPECT_FALSE(bus.read(0, 10, out)) << "events 1 and 2 are gone";
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out.front().id, 3u);
  out.clear();
  EXPECT_TRUE(bus.read(2, 10, out));
  EXPECT_EQ(out.size(), 3u);
}

// A store's last id moves the numbering on (never back); reads still find events by id
// across the jump, and a jump is not mistaken for dropped events.
TEST(EventBusTest, IdsContinueAfterAGivenIdAndReadsFollowTheJump) {
  EventBus bus(4);
  EXPECT_EQ(bus.publish(track_event(1)), 1u);
  bus.continue_after(100);
  EXPECT_EQ(bus.publish(track_event(2)), 101u);
  bus.continue_after(50);  // never lowers
  EXPECT_EQ(bus.publish(track_event(3)), 102u);
  std::vector<Event> out;
  EXPECT_TRUE(bus.read(1, 10, out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].id, 101u);
  out.clear();
  EXPECT_TRUE(bus.read(60, 10, out)) << "an id inside the jump missed nothing";
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].track_id, 2u);
  out.clear();
  EXPECT_TRUE(bus.read(101, 10, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 102u);
  for (int i = 0; i < 3; ++i) bus.publish(track_event(9));  // the ring (4) drops 1 and 101
  out.clear();
  EXPECT_FALSE(bus.read(60, 10, out)) << "101 was dropped";
  EXPECT_EQ(out.front().id, 102u);
  EXPECT_EQ(bus.last_id(), 105u);
}

TEST(EventBusTest, SubscribersSeeEveryEventInOrderUntilTheyUnsubscribe) {
  EventBus bus;
  std::vector<std::uint64_t> seen;
  const auto id = bus.subscribe([&](const Event& e) { seen.push_back(e.id); });
  bus.publish(track_event(1));
  bus.publish(track_event(2));
  bus.unsubscribe(id);
  bus.publish(track_event(3));
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{1, 2}));
}

TEST(EventBusTest, WaitWakesWhenAnotherThreadPublishes) {
  EventBus bus;
  std::thread publisher([&] { bus.publish(track_event(1)); });
  EXPECT_TRUE(bus.wait(0, SteadyTime::clock::now() + std::chrono::seconds(30)));
  publisher.join();
  EXPECT_FALSE(bus.wait(1, SteadyTime::clock::now() + std::chrono::milliseconds(1))) << "nothing after 1";
}

TEST(EventBusTest, ConcurrentPublishersGetDistinctIdsDeliveredInOrder) {
  EventBus bus(100000);
  std::vector<std::uint64_t> seen;
  bus.subscribe([&](const Event& e) { seen.push_back(e.id); });  // called one at a time
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) bus.publish(track_event(1));
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(seen.size(), 2000u);
  for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], i + 1);
}

TEST(EventBusTest, CloseWakesWaiters) {
  EventBus bus;
  std::thread closer([&] { bus.close(); });
  EXPECT_FALSE(bus.wait(0, SteadyTime::clock::now() + std::chrono::seconds(30)));
  closer.join();
}

}  // namespace
}  // namespace vigil
