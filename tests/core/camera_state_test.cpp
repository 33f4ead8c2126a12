#include "vigil/core/camera_state.h"

#include <gtest/gtest.h>

#include "vigil/core/clock.h"

namespace vigil {
namespace {

using S = CameraState;

TEST(CameraStateTest, TransitionTableAllowsTheCameraLifecycleOnly) {
  EXPECT_TRUE(allowed_transition(S::connecting, S::live));
  EXPECT_TRUE(allowed_transition(S::connecting, S::stalled));
  EXPECT_TRUE(allowed_transition(S::live, S::stalled));
  EXPECT_TRUE(allowed_transition(S::live, S::connecting));
  EXPECT_TRUE(allowed_transition(S::stalled, S::connecting));
  EXPECT_TRUE(allowed_transition(S::stalled, S::live));
  for (S from : {S::connecting, S::live, S::stalled}) {
    EXPECT_TRUE(allowed_transition(from, S::failed));
    EXPECT_TRUE(allowed_transition(from, S::stopped));
    EXPECT_FALSE(allowed_transition(from, from));
  }
  for (S to : {S::connecting, S::live, S::stalled, S::failed, S::stopped}) {
    EXPECT_FALSE(allowed_transition(S::failed, to)) << "failed is final";
    EXPECT_FALSE(allowed_transition(S::stopped, to)) << "stopped is final";
  }
}

TEST(CameraStateTest, MachineRecordsTransitionsWithTheirTimesAndTellsTheListener) {
  ManualClock clock;
  std::vector<std::pair<S, S>> heard;
  CameraStateMachine m(clock.steady_now(), [&](S from, S to, SteadyTime) { heard.emplace_back(from, to); });
  clock.advance(std::chrono::seconds(1));
  EXPECT_TRUE(m.transition(S::live, clock.steady_now()));
  EXPECT_FALSE(m.transition(S::live, clock.steady_now())) << "same state: no transition";
  clock.advance(std::chrono::seconds(2));
  EXPECT_TRUE(m.transition(S::stalled, clock.steady_now()));
  EXPECT_TRUE(m.transition(S::connecting, clock.steady_now()));
  EXPECT_TRUE(m.transition(S::stopped, clock.steady_now()));
  EXPECT_TRUE(m.final());
  const auto h = m.history();
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h[0].state, S::connecting);
  EXPECT_EQ(h[1].state, S::live);
  EXPECT_EQ(h[1].at - h[0].at, std::chrono::seconds(1));
  EXPECT_EQ(h[2].at - h[1].at, std::chrono::seconds(2));
  EXPECT_EQ(heard, (std::vector<std::pair<S, S>>{{S::connecting, S::live}, {S::live, S::stalled},
                                                  {S::stalled, S::connecting}, {S::connecting, S::stopped}}));
}

TEST(CameraStateTest, RefusedTransitionsAreCountedAndNotApplied) {
  ManualClock clock;
  CameraStateMachine m(clock.steady_now());
  ASSERT_TRUE(m.transition(S::failed, clock.steady_now()));
  EXPECT_FALSE(m.transition(S::live, clock.steady_now()));  // a late report after the failure
  EXPECT_FALSE(m.transition(S::stopped, clock.steady_now()));
  EXPECT_EQ(m.state(), S::failed);
  EXPECT_EQ(m.refused(), 2u);
  EXPECT_EQ(m.history().size(), 2u);
}

TEST(CameraStateTest, HistoryKeepsTheLastEntriesOnly) {
  ManualClock clock;
  CameraStateMachine m(clock.steady_now());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(m.transition(S::live, clock.steady_now()));
    ASSERT_TRUE(m.transition(S::connecting, clock.steady_now()));
  }
  const auto h = m.history();
  EXPECT_EQ(h.size(), CameraStateMachine::kHistory);
  EXPECT_EQ(h.back().state, S::connecting);
}

}  // namespace
}  // namespace vigil
