#include "vigil/concurrency/timer_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace vigil {
namespace {

using std::chrono::milliseconds;

TEST(TimerServiceTest, ManyPeriodicTasksShareFewThreads) {
  TimerService timers(2);
  std::atomic<int> runs{0};
  std::vector<TimerService::TaskId> ids;
  for (int i = 0; i < 200; ++i) {
    ids.push_back(timers.schedule(std::chrono::steady_clock::now(), [&](SteadyTime due) -> std::optional<SteadyTime> {
      runs.fetch_add(1);
      return due + milliseconds(10);
    }));
  }
  EXPECT_EQ(timers.thread_count(), 2);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (runs.load() < 2000 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(5));
  EXPECT_GE(runs.load(), 2000);
  for (auto id : ids) timers.cancel(id);
  EXPECT_EQ(timers.task_count(), 0u);
}

TEST(TimerServiceTest, TaskRunsNoEarlierThanDue) {
  TimerService timers(1);
  std::atomic<bool> ran{false};
  SteadyTime ran_at{};
  const SteadyTime due = std::chrono::steady_clock::now() + milliseconds(50);
  timers.schedule(due, [&](SteadyTime) -> std::optional<SteadyTime> {
    ran_at = std::chrono::steady_clock::now();
    ran = true;
    return std::nullopt;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!ran.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  ASSERT_TRUE(ran.load());
  EXPECT_GE(ran_at, due);
  // A task that returns nothing is gone once it has returned (`ran` is set inside it, so
  // wait for the timer thread to finish it rather than expect it gone already).
  while (timers.task_count() != 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  EXPECT_EQ(timers.task_count(), 0u);
}

TEST(TimerServiceTest, CancelWaitsForARunningTask) {
  TimerService timers(1);
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  const auto id = timers.schedule(std::chrono::steady_clock::now(), [&](SteadyTime) -> std::optional<SteadyTime> {
    started = true;
    std::this_thread::sleep_for(milliseconds(100));
    finished = true;
    return std::chrono::steady_clock::now();
  });
  while (!started.load()) std::this_thread::sleep_for(milliseconds(1));
  timers.cancel(id);
  EXPECT_TRUE(finished.load());
  EXPECT_EQ(timers.task_count(), 0u);
}

}  // namespace
}  // namespace vigil
