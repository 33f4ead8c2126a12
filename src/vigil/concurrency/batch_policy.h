// Batch formation as a pure function: given the policy, how many cameras are ready, when
// the oldest of them became ready, and now, decide whether to close a batch now or how long
// to wait. No clock, no threads: the Scheduler passes `now` in, tests pass any instant.
//
// A batch closes when max_batch cameras are ready, or when max_delay has passed since the
// first of them became ready. When several workers are idle, the ready cameras are shared
// among them (a camera has at most one frame in flight, so one worker taking every ready
// camera would leave the others idle). When no other camera could join (every camera of
// the model is ready or in flight), waiting is pointless and the batch closes at once.
// Waits are floored at 1 ms so a caller never busy-polls.
//
// Fair share: a batch takes at most the model's cameras divided among all workers
// (fair_share). Without the cap, two workers serving four always-ready file cameras settle
// into batches of 1 and 3 (the lone camera is ready again exactly when the other three are
// still in flight), and the lone camera then runs three times as fast as the others. With
// it the groups stay balanced (2 and 2), so every camera gets the same rate.
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

// idle_workers: workers not running a batch, the caller included (at least 1).
// could_join: cameras of this model that are neither ready nor in flight.
// fair_share: at most this many cameras per batch (ceil(cameras / workers)).
inline BatchDecision decide_batch(const BatchPolicy& policy, std::size_t ready, SteadyTime oldest_ready,
                                  SteadyTime now, std::size_t idle_workers = 1,
                                  std::size_t could_join = static_cast<std::size_t>(-1),
                                  std::size_t fair_share = static_cast<std::size_t>(-1)) {
  BatchDecision d;
  if (ready == 0) return d;  // nothing to wait for: wait for a camera to become ready
  const std::size_t max_batch = std::max<std::size_t>(1, std::min(policy.max_batch, fair_share));
  const std::size_t share = (ready + std::max<std::size_t>(1, idle_workers) - 1) / std::max<std::size_t>(1, idle_workers);
  const SteadyTime deadline = oldest_ready + policy.max_delay;
  if (ready >= max_batch || now >= deadline || could_join == 0) {
    d.close = true;
    d.take = std::min({ready, max_batch, share});
    return d;
  }
  d.wait_until = std::max(deadline, now + std::chrono::milliseconds(1));
  return d;
}

}  // namespace vigil
