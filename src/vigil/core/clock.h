// Clock: the source of "now" for code whose timing decisions must be testable.
// Production code uses SystemClock; tests pass a ManualClock and move it by hand.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>

#include "vigil/core/frame.h"

namespace vigil {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime steady_now() const = 0;
  virtual SystemTime system_now() const = 0;
};

class SystemClock final : public Clock {
 public:
  SteadyTime steady_now() const override { return std::chrono::steady_clock::now(); }
  SystemTime system_now() const override { return std::chrono::system_clock::now(); }
  static const SystemClock& instance();
};

// ManualClock: time moves only when advance() is called. Thread-safe.
class ManualClock final : public Clock {
 public:
  SteadyTime steady_now() const override { return SteadyTime{} + std::chrono::nanoseconds(ns_.load()); }
  SystemTime system_now() const override { return SystemTime{} + std::chrono::nanoseconds(ns_.load()); }
  void advance(std::chrono::nanoseconds d) { ns_ += d.count(); }

 private:
  std::atomic<long long> ns_{1'000'000'000};
};

// Writes "2026-11-23T07:02:28.123Z" (24 chars + NUL) into out; returns the length written.
// No allocation, no locale: safe on the per-frame path.
std::size_t format_utc_iso8601(SystemTime t, char (&out)[32]);

// Milliseconds between two steady instants, as a double.
inline double ms_between(SteadyTime from, SteadyTime to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

}  // namespace vigil
