// Pacer: sleeps until an instant unless interrupted. Used by sources that deliver frames at
// a set rate. Parks on a condition variable (no polling). wait_until() on the reader
// thread, interrupt() from any thread.
#pragma once

#include <condition_variable>
#include <mutex>

#include "vigil/core/frame.h"

namespace vigil {

class Pacer {
 public:
  // Returns false if interrupted (before or during the wait).
  bool wait_until(SteadyTime when) {
    std::unique_lock lock(mu_);
    return !cv_.wait_until(lock, when, [this] { return interrupted_; });
  }
  void interrupt() {
    {
      std::lock_guard lock(mu_);
      interrupted_ = true;
    }
    cv_.notify_all();
  }
  bool interrupted() const {
    std::lock_guard lock(mu_);
    return interrupted_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool interrupted_ = false;  // guarded by mu_
};

}  // namespace vigil
