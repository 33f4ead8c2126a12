// Mutex, MutexLock, CondVar and Guarded<T>: std::mutex and std::condition_variable with
// Clang's thread-safety annotations (core/thread_annotations.h), so that which lock guards
// what is stated in code and checked by the compiler, not only written in comments.
//
//   Mutex mu_;
//   CondVar ready_cv_;
//   bool ready_ GUARDED_BY(mu_) = false;
//   void wait_ready() EXCLUDES(mu_) {
//     MutexLock lock(mu_);
//     while (!ready_) ready_cv_.wait(mu_);   // loops, not predicates: the analysis sees the lock
//   }
//
// Guarded<T> is for state that one object keeps for another that locks it: a camera's place in
// the scheduler lives with the camera but is guarded by the scheduler's mutex. get(mu) is only
// callable with `mu` held (the analysis checks the caller) and checks, in debug builds, that
// `mu` is the mutex the value was declared with.
#pragma once

#include <cassert>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "vigil/core/thread_annotations.h"

namespace vigil {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis that the caller holds this mutex where it cannot see so itself: in a
  // callback that runs synchronously under the caller's lock (a predicate passed to a
  // container's method). Checks nothing at run time.
  void assert_held() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope; unlock() and lock() let go and take it again inside the scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void unlock() RELEASE() {
    mu_.unlock();
    held_ = false;
  }
  void lock() ACQUIRE() {
    mu_.lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// A condition variable over a Mutex the caller holds (it is let go while waiting and held
// again on return). Wakes can be spurious: wait in a loop over the condition.
class CondVar {
 public:
  void wait(Mutex& mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // false when `deadline` passed.
  template <class Clock, class Duration>
  bool wait_until(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const bool woken = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  template <class Rep, class Period>
  bool wait_for(Mutex& mu, const std::chrono::duration<Rep, Period>& timeout) REQUIRES(mu) {
    return wait_until(mu, std::chrono::steady_clock::now() + timeout);
  }
  void notify_one() { cv_.notify_one(); }
  void notify_all() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

template <class T>
class Guarded {
 public:
  explicit Guarded(const Mutex& mu) : mu_(&mu), value_() {}
  T& get(const Mutex& held) REQUIRES(held) {
    assert(&held == mu_);
    (void)held;
    return value_;
  }
  const T& get(const Mutex& held) const REQUIRES(held) {
    assert(&held == mu_);
    (void)held;
    return value_;
  }

 private:
  const Mutex* mu_;
  T value_;
};

}  // namespace vigil
