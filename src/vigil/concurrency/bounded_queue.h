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

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

namespace vigil {

enum class OverflowPolicy { block, drop_oldest, drop_newest, reject };

enum class PushResult { pushed, dropped_oldest, dropped_new, rejected, closed };

template <class T>
class BoundedQueue {
 public:
  BoundedQueue(std::size_t capacity, OverflowPolicy policy) : capacity_(capacity ? capacity : 1), policy_(policy) {}

  PushResult push(T item) {
    std::unique_lock lock(mu_);
    if (closed_) return PushResult::closed;
    PushResult result = PushResult::pushed;
    if (items_.size() >= capacity_) {
      switch (policy_) {
        case OverflowPolicy::block:
          not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
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
  std::optional<T> pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    return pop_locked(lock);
  }

  // Returns an item if one is there, without waiting.
  std::optional<T> try_pop() {
    std::unique_lock lock(mu_);
    return pop_locked(lock);
  }

  // Returns the oldest item if there is one and pred(item) holds, without waiting.
  template <class Pred>
  std::optional<T> try_pop_if(Pred pred) {
    std::unique_lock lock(mu_);
    if (items_.empty() || !pred(std::as_const(items_.front()))) return std::nullopt;
    return pop_locked(lock);
  }

  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  std::size_t size() const {
    std::lock_guard lock(mu_);
    return items_.size();
  }
  bool empty() const { return size() == 0; }
  std::uint64_t dropped() const {
    std::lock_guard lock(mu_);
    return dropped_;
  }
  std::size_t capacity() const { return capacity_; }

 private:
  std::optional<T> pop_locked(std::unique_lock<std::mutex>& lock) {
    if (items_.empty()) return std::nullopt;
    std::optional<T> item(std::move(items_.front()));
    items_.pop_front();
    lock.unlock();
    not_full_.notify_one();
    return item;
  }

  const std::size_t capacity_;
  const OverflowPolicy policy_;
  mutable std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<T> items_;        // guarded by mu_
  bool closed_ = false;        // guarded by mu_
  std::uint64_t dropped_ = 0;  // guarded by mu_
};

}  // namespace vigil
