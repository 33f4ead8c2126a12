#include "vigil/concurrency/cpu_governor.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

using std::chrono::milliseconds;

const SteadyTime t0 = SteadyTime{} + std::chrono::seconds(10);

TEST(CpuGovernorTest, WithinBudgetNoWait) {
  CpuGovernor governor(1.0, true, [] { return 0.0; });
  EXPECT_EQ(governor.wait_seconds(100.0, t0), 0.0);                      // first call sets the base
  EXPECT_EQ(governor.wait_seconds(100.5, t0 + milliseconds(1000)), 0.0);  // 0.5 core
}

TEST(CpuGovernorTest, OverBudgetWaitsUntilTheAllowanceCatchesUp) {
  CpuGovernor governor(1.0, true, [] { return 0.0; });
  (void)governor.wait_seconds(0.0, t0);
  // 1.5 core-seconds in one second against a target of 0.95 core: 0.55 - burst over.
  const double wait = governor.wait_seconds(1.5, t0 + milliseconds(1000));
  EXPECT_NEAR(wait, (1.5 - 0.95 - 0.02) / 0.95, 1e-9);
}

TEST(CpuGovernorTest, IdleCreditIsCappedAtTheBurst) {
  CpuGovernor governor(2.0, true, [] { return 0.0; });
  (void)governor.wait_seconds(0.0, t0);
  EXPECT_EQ(governor.wait_seconds(0.0, t0 + std::chrono::seconds(60)), 0.0);  // a minute idle
  // Then a burst of 2.5 core-seconds within 1 s: the idle minute does not pay for it.
  EXPECT_GT(governor.wait_seconds(2.5, t0 + std::chrono::seconds(61)), 0.0);
}

TEST(CpuGovernorTest, NotEnforcedNeverWaits) {
  CpuGovernor governor(0.5, false, [] { return 1e9; });
  EXPECT_TRUE(governor.admit());
}

TEST(CpuGovernorTest, StopReleasesAWaitingWorker) {
  double used = 0;
  CpuGovernor governor(1.0, true, [&] { return used; });
  EXPECT_TRUE(governor.admit());  // sets the base
  used = 1000;                    // far over: admit would wait for ~17 minutes
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(50));
    governor.stop();
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(governor.admit());
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

}  // namespace
}  // namespace vigil
