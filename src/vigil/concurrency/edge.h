// Edge<T>: a stage's input edge, built from a declaration (EdgeSpec) instead of being chosen
// in code. Two policies:
//
//   newest_wins  the producer never waits: the edge keeps the newest `capacity` items and
//                replaces (and counts) the oldest when full. Live cameras: capacity 1, a
//                CameraSlot (capture never waits for inference, inference sees the newest).
//   queue        the producer waits for room: nothing is lost, order is kept (a
//                BoundedQueue that blocks). File cameras: capacity 4.
//
//   Edge<FrameRef> edge({EdgeOverflow::newest_wins, 1});
//   edge.push(frame);                 // pushed, or dropped_oldest when it replaced one
//   std::optional<FrameRef> f = edge.take();
//
// close() ends the edge: pushes then return closed (a producer waiting for room wakes),
// takes drain what is left.
// Threading: any number of producers and consumers.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "vigil/concurrency/bounded_queue.h"
#include "vigil/concurrency/camera_slot.h"

namespace vigil {

enum class EdgeOverflow { newest_wins, queue };

inline std::string_view to_string(EdgeOverflow o) { return o == EdgeOverflow::newest_wins ? "newest-wins" : "queue"; }

struct EdgeSpec {
  EdgeOverflow overflow = EdgeOverflow::newest_wins;
  std::size_t capacity = 1;  // items held for the stage (at least 1)
  bool operator==(const EdgeSpec&) const = default;
};

template <class T>
class Edge {
 public:
  explicit Edge(EdgeSpec spec) : spec_(spec) {
    if (spec_.capacity == 0) spec_.capacity = 1;
    if (spec_.overflow == EdgeOverflow::newest_wins && spec_.capacity == 1) {
      slot_.emplace();
    } else {
      queue_.emplace(spec_.capacity, spec_.overflow == EdgeOverflow::queue ? OverflowPolicy::block : OverflowPolicy::drop_oldest);
    }
  }

  const EdgeSpec& spec() const { return spec_; }

  // pushed; dropped_oldest when it replaced an item nobody took (newest_wins); closed.
  // A queue edge waits for room.
  PushResult push(T item) {
    if (queue_) return queue_->push(std::move(item));
    if (closed_.load(std::memory_order_acquire)) return PushResult::closed;
    return slot_->publish(std::move(item)) ? PushResult::dropped_oldest : PushResult::pushed;
  }

  // The oldest item held (with capacity 1: the only one), if any, without waiting.
  std::optional<T> take() { return queue_ ? queue_->try_pop() : slot_->take(); }

  // The same, only if pred(item) holds; otherwise the item stays.
  template <class Pred>
  std::optional<T> take_if(Pred pred) {
    return queue_ ? queue_->try_pop_if(pred) : slot_->take_if(pred);
  }

  bool has_item() const { return queue_ ? !queue_->empty() : slot_->has_item(); }
  std::size_t size() const { return queue_ ? queue_->size() : (slot_->has_item() ? 1 : 0); }
  bool full() const { return size() >= spec_.capacity; }

  void close() {
    closed_.store(true, std::memory_order_release);
    if (queue_) queue_->close();
  }

  // Drops whatever is held (not counted as replaced).
  void clear() {
    if (slot_) {
      slot_->clear();
    } else {
      while (queue_->try_pop()) {
      }
    }
  }

  // Items replaced before anyone took them (newest_wins only).
  std::uint64_t replaced() const { return queue_ ? queue_->dropped() : slot_->replaced(); }

 private:
  EdgeSpec spec_;
  std::atomic<bool> closed_{false};
  std::optional<CameraSlot<T>> slot_;     // newest_wins, capacity 1
  std::optional<BoundedQueue<T>> queue_;  // otherwise
};

}  // namespace vigil
