#include "vigil/core/clock.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(ClockTest, FormatsUtcWithMilliseconds) {
  // 2026-11-23T07:02:28.123Z
  const SystemTime t = SystemTime{} + std::chrono::milliseconds(1795417348123LL);
  char out[32];
  const std::size_t n = format_utc_iso8601(t, out);
  EXPECT_EQ(std::string(out, n), "2026-11-23T07:02:28.123Z");
}

TEST(ClockTest, ManualClockMovesOnlyWhenAdvanced) {
  ManualClock clock;
  const SteadyTime a = clock.steady_now();
  EXPECT_EQ(clock.steady_now(), a);
  clock.advance(std::chrono::milliseconds(5));
  EXPECT_DOUBLE_EQ(ms_between(a, clock.steady_now()), 5.0);
}

}  // namespace
}  // namespace vigil
