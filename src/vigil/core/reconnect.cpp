#include "vigil/core/reconnect.h"

#include <algorithm>

namespace vigil {

ReconnectBackoff::ReconnectBackoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, std::uint32_t seed)
    : initial_(std::max(initial, std::chrono::milliseconds(1))),
      max_(std::max(max, initial_)),
      delay_(initial_),
      rng_(seed) {}

std::chrono::milliseconds ReconnectBackoff::next() {
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(delay_ * jitter(rng_));
  delay_ = std::min(delay_ * 2, max_);
  return wait;
}

}  // namespace vigil
