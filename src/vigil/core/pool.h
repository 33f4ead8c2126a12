// Pool<T> and Ref<T>: recycled objects with intrusive reference counts.
//
// Frames and pixel buffers are handed between threads many times a second. Allocating them
// per frame would put malloc on the hot path, so they come from a Pool and go back to it
// when the last Ref is dropped. A pool grows while demand grows and then stays put: in
// steady state acquire() and release allocate nothing (a per-pool mutex guards the free
// list; there is no global lock).
//
// Ownership: the Pool owns idle objects; Refs share ownership of a live one. Refs may
// outlive their Pool: a slot released after the pool is destroyed is deleted, not leaked.
// Thread safety: acquire(), Ref copy and destruction may run on any thread concurrently.
// Objects are mutable only through mutable_get(), by the thread that acquired it, before it
// shares the Ref (a published object is immutable).
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "vigil/core/mutex.h"

namespace vigil {

template <class T>
class Pool;

namespace internal {
template <class T>
struct PoolShared;

template <class T>
struct PoolSlot {
  T value{};
  std::atomic<std::uint32_t> refs{0};
  std::shared_ptr<PoolShared<T>> shared;
};

template <class T>
struct PoolShared {
  Mutex mu;
  std::vector<PoolSlot<T>*> free GUARDED_BY(mu);
  std::size_t created GUARDED_BY(mu) = 0;
  std::size_t outstanding GUARDED_BY(mu) = 0;
  bool closed GUARDED_BY(mu) = false;
  std::size_t max_slots = 0;
  std::function<void(T&)> on_release;  // set before the first acquire, then read-only

  static void release(PoolSlot<T>* slot) {
    PoolShared<T>& shared = *slot->shared;
    if (shared.on_release) shared.on_release(slot->value);
    bool destroy = false;
    {
      MutexLock lock(shared.mu);
      --shared.outstanding;
      if (shared.closed) {
        destroy = true;
      } else {
        shared.free.push_back(slot);
      }
    }
    if (destroy) delete slot;  // may drop the last reference to `shared`
  }
};
}  // namespace internal

// Ref<T>: a counted reference to a pooled T. Empty when default-constructed.
template <class T>
class Ref {
 public:
  Ref() = default;
  Ref(const Ref& other) noexcept : slot_(other.slot_) {
    if (slot_) slot_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  Ref(Ref&& other) noexcept : slot_(std::exchange(other.slot_, nullptr)) {}
  Ref& operator=(Ref other) noexcept {
    std::swap(slot_, other.slot_);
    return *this;
  }
  ~Ref() { reset(); }

  void reset() {
    if (slot_ && slot_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      internal::PoolShared<T>::release(slot_);
    }
    slot_ = nullptr;
  }

  explicit operator bool() const { return slot_ != nullptr; }
  const T& operator*() const { return slot_->value; }
  const T* operator->() const { return &slot_->value; }
  const T* get() const { return slot_ ? &slot_->value : nullptr; }
  // Mutable access for the producer, before the object is shared.
  T* mutable_get() const { return slot_ ? &slot_->value : nullptr; }
  std::uint32_t use_count() const { return slot_ ? slot_->refs.load(std::memory_order_relaxed) : 0; }

 private:
  friend class Pool<T>;
  explicit Ref(internal::PoolSlot<T>* slot) : slot_(slot) { slot_->refs.store(1, std::memory_order_relaxed); }
  internal::PoolSlot<T>* slot_ = nullptr;
};

template <class T>
class Pool {
 public:
  static constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();

  // on_release runs when the last Ref to an object is dropped, on the dropping thread
  // (e.g. to unref decoder buffers); it must not throw.
  explicit Pool(std::size_t max_slots = kUnbounded, std::function<void(T&)> on_release = {})
      : shared_(std::make_shared<internal::PoolShared<T>>()) {
    shared_->max_slots = max_slots;
    shared_->on_release = std::move(on_release);
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool() {
    std::vector<internal::PoolSlot<T>*> idle;
    {
      MutexLock lock(shared_->mu);
      shared_->closed = true;
      idle.swap(shared_->free);
    }
    for (auto* slot : idle) delete slot;
  }

  // Returns an idle object (as it was left) or a new default-constructed one; an empty Ref
  // when max_slots objects are already out.
  Ref<T> acquire() {
    internal::PoolSlot<T>* slot = nullptr;
    {
      MutexLock lock(shared_->mu);
      if (!shared_->free.empty()) {
        slot = shared_->free.back();
        shared_->free.pop_back();
      } else if (shared_->created >= shared_->max_slots) {
        return {};
      }
      ++shared_->outstanding;
      if (!slot) ++shared_->created;
    }
    if (!slot) {
      slot = new internal::PoolSlot<T>();
      slot->shared = shared_;
    }
    return Ref<T>(slot);
  }

  // Objects currently referenced by at least one Ref.
  std::size_t outstanding() const {
    MutexLock lock(shared_->mu);
    return shared_->outstanding;
  }
  // Objects ever created (idle + outstanding).
  std::size_t created() const {
    MutexLock lock(shared_->mu);
    return shared_->created;
  }

 private:
  std::shared_ptr<internal::PoolShared<T>> shared_;
};

}  // namespace vigil
