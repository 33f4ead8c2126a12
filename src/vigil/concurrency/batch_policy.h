// Batch formation as a pure function: given the policy, how many cameras are ready, when
// the oldest of them became ready, and now, decide whether to close a batch now or how long
// to wait. No clock, no threads: the Scheduler passes `now` in, tests pass any instant.
//
// A batch closes when max_batch cameras are ready, or when max_delay has passed since the
// first of them became ready. Waits are floored at 1 ms so a caller never busy-polls.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

#include "vigil/core/frame.h"

namespace vigil {

struct BatchPolicy {
  std::size_t max_batch = 8;
  std::chrono::microseconds max_delay{2000};
};

struct BatchDecision {
  bool close = false;        // form a batch now
  std::size_t take = 0;      // of this many cameras (when close)
  SteadyTime wait_until{};   // otherwise wait until this instant (or until more are ready)
};

inline BatchDecision decide_batch(const BatchPolicy& policy, std::size_t ready, SteadyTime oldest_ready,
                                  SteadyTime now) {
  BatchDecision d;
  if (ready == 0) return d;  // nothing to wait for: wait for a camera to become ready
  const std::size_t max_batch = std::max<std::size_t>(1, policy.max_batch);
  const SteadyTime deadline = oldest_ready + policy.max_delay;
  if (ready >= max_batch || now >= deadline) {
    d.close = true;
    d.take = std::min(ready, max_batch);
    return d;
  }
  d.wait_until = std::max(deadline, now + std::chrono::milliseconds(1));
  return d;
}

}  // namespace vigil
