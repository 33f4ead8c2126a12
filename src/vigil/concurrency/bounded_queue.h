// BoundedQueue<T>: a FIFO with a fixed capacity and an overflow policy.
//
//   block        push() waits for room (file sources: nothing is lost, replay is
//                deterministic)
//   drop_oldest  push() discards the oldest item and counts it
//   drop_newest  push() discards the new item and counts it
//   reject       push() returns resource_exhausted and counts it
// close() wakes every waiter: pushes then fail, pops drain what is left, then return
// nothing. All waits park on condition variables.
//
// Threading: any number of producers and consumers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

#include "vigil/core/mutex.h"

namespace vigil {

enum class OverflowPolicy { block, drop_oldest, drop_newest, reject };

enum class PushResult { pushed, dropped_oldest, dropped_new, rejected, closed };

template <class T>
class BoundedQueue {
 public:
  BoundedQueue(std::size_t capacity, OverflowPolicy policy) : capacity_(capacity ? capacity : 1), policy_(policy) {}

  PushResult push(T item) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    if (closed_) return PushResult::closed;
    PushResult result = PushResult::pushed;
    if (items_.size() >= capacity_) {
      switch (policy_) {
        case OverflowPolicy::block:
          while (!closed_ && items_.size() >= capacity_) not_full_.wait(mu_);
          if (closed_) return PushResult::closed;
          break;
        case OverflowPolicy::drop_oldest:
          items_.pop_front();
          ++dropped_;
          result = PushResult::dropped_oldest;
          break;
        case OverflowPolicy::drop_newest:
          ++dropped_;
          return PushResult::dropped_new;
        case OverflowPolicy::reject:
          ++dropped_;
          return PushResult::rejected;
      }
    }
    items_.push_back(std::move(item));
    lock.unlock();
    not_empty_.notify_one();
    return result;
  }

  // Waits for an item; nothing once the queue is closed and empty.
  std::optional<T> pop() EXCLUDES(mu_) {
    std::optional<T> item;
    {
      MutexLock lock(mu_);
      while (!closed_ && items_.empty()) not_empty_.wait(mu_);
      item = pop_front();
    }
    return woke_producer(std::move(item));
  }

  // Returns an item if one is there, without waiting.
  std::optional<T> try_pop() EXCLUDES(mu_) {
    std::optional<T> item;
    {
      MutexLock lock(mu_);
      item = pop_front();
    }
    return woke_producer(std::move(item));
  }

  // Returns the oldest item if there is one and pred(item) holds, without waiting.
  template <class Pred>
  std::optional<T> try_pop_if(Pred pred) EXCLUDES(mu_) {
    std::optional<T> item;
    {
      MutexLock lock(mu_);
      if (items_.empty() || !pred(std::as_const(items_.front()))) return std::nullopt;
      item = pop_front();
    }
    return woke_producer(std::move(item));
  }

  void close() EXCLUDES(mu_) {
    {
      MutexLock lock(mu_);
      closed_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  std::size_t size() const EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return items_.size();
  }
  bool empty() const { return size() == 0; }
  std::uint64_t dropped() const EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return dropped_;
  }
  std::size_t capacity() const { return capacity_; }

 private:
  std::optional<T> pop_front() REQUIRES(mu_) {
    if (items_.empty()) return std::nullopt;
    std::optional<T> item(std::move(items_.front()));
    items_.pop_front();
    return item;
  }
  // After an item left (the lock let go): a producer waiting for room may go on.
  std::optional<T> woke_producer(std::optional<T> item) {
    if (item) not_full_.notify_one();
    return item;
  }

  const std::size_t capacity_;
  const OverflowPolicy policy_;
  mutable Mutex mu_;
  CondVar not_empty_;
  CondVar not_full_;
  std::deque<T> items_ GUARDED_BY(mu_);
  bool closed_ GUARDED_BY(mu_) = false;
  std::uint64_t dropped_ GUARDED_BY(mu_) = 0;
};

}  // namespace vigil
