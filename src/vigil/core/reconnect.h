// ReconnectBackoff: how long a camera waits before its next connection attempt. The first
// wait is `initial`, each failure doubles it up to `max`, and every wait is jittered by
// +-20% so that cameras that lost the same server do not all retry in the same instant.
// reset() once the stream delivers a frame again.
//
//   ReconnectBackoff backoff(250ms, 10s, seed);
//   sleep(backoff.next());   // 200..300 ms, then 400..600 ms, ... at most 8..12 s
//
// No clock and no sleeping: the caller waits (interruptibly). Threading: one caller.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace vigil {

class ReconnectBackoff {
 public:
  ReconnectBackoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, std::uint32_t seed);
  // The wait before the next attempt; doubles the delay for the one after.
  std::chrono::milliseconds next();
  void reset() { delay_ = initial_; }

 private:
  std::chrono::milliseconds initial_, max_, delay_;
  std::mt19937 rng_;
};

}  // namespace vigil
