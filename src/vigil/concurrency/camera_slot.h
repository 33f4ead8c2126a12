// CameraSlot<T>: the hand-off of a live camera. Capacity 1, overflow policy drop_oldest:
// publish() replaces whatever was not taken yet and counts it, so capture never waits for
// inference and the consumer always gets the newest item.
//
// Threading: publish() from the camera's producer, take()/peek from consumers; a
// per-slot mutex (never global) guards the value, held only to move a handle.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>

#include "vigil/core/mutex.h"

namespace vigil {

template <class T>
class CameraSlot {
 public:
  // Stores item as the newest; returns true if it replaced one nobody took.
  bool publish(T item) EXCLUDES(mu_) {
    [[maybe_unused]] T old;  // destroyed after the lock is released
    bool replaced = false;
    {
      MutexLock lock(mu_);
      replaced = has_;
      if (replaced) old = std::move(value_);  // destroyed outside the lock
      value_ = std::move(item);
      has_ = true;
    }
    published_.fetch_add(1, std::memory_order_relaxed);
    if (replaced) replaced_.fetch_add(1, std::memory_order_relaxed);
    return replaced;
  }

  // Removes and returns the newest item, if any.
  std::optional<T> take() EXCLUDES(mu_) {
    MutexLock lock(mu_);
    if (!has_) return std::nullopt;
    has_ = false;
    return std::optional<T>(std::move(value_));
  }

  // Removes and returns the newest item if there is one and pred(item) holds.
  template <class Pred>
  std::optional<T> take_if(Pred pred) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    if (!has_ || !pred(std::as_const(value_))) return std::nullopt;
    has_ = false;
    return std::optional<T>(std::move(value_));
  }

  bool has_item() const EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return has_;
  }

  // Drops the item, if any (not counted as replaced).
  void clear() EXCLUDES(mu_) {
    [[maybe_unused]] T old;  // destroyed after the lock is released
    MutexLock lock(mu_);
    if (has_) old = std::move(value_);
    has_ = false;
  }

  std::uint64_t published() const { return published_.load(std::memory_order_relaxed); }
  std::uint64_t replaced() const { return replaced_.load(std::memory_order_relaxed); }

 private:
  mutable Mutex mu_;
  T value_ GUARDED_BY(mu_){};
  bool has_ GUARDED_BY(mu_) = false;
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> replaced_{0};
};

}  // namespace vigil
