// Pacer: sleeps until an instant unless interrupted. Used by sources that deliver frames at
// a set rate. Parks on a condition variable (no polling). wait_until() on the reader
// thread, interrupt() from any thread.
#pragma once

#include "vigil/core/frame.h"
#include "vigil/core/mutex.h"

namespace vigil {

class Pacer {
 public:
  // Returns false if interrupted (before or during the wait).
  bool wait_until(SteadyTime when) {
    MutexLock lock(mu_);
    while (!interrupted_) {
      if (!cv_.wait_until(mu_, when)) break;
    }
    return !interrupted_;
  }
  void interrupt() {
    {
      MutexLock lock(mu_);
      interrupted_ = true;
    }
    cv_.notify_all();
  }
  bool interrupted() const {
    MutexLock lock(mu_);
    return interrupted_;
  }

 private:
  mutable Mutex mu_;
  CondVar cv_;
  bool interrupted_ GUARDED_BY(mu_) = false;
};

}  // namespace vigil
