// CallContext: what a model call's caller knows about each item of the batch it passes to a
// Backend (which camera and frame, when it was captured, whether it may be dropped when late),
// for the backends that need it: the remote backend (cluster/remote_backend.h) sends it with
// each request, so that a worker drops a live camera's stale frame and the sinks see each
// frame once. Local backends ignore it.
//
//   CallContext::Scope scope(items);   // the engine, around detector.detect(images, ...)
//   ... backend->infer(input, out) ... // CallContext::take(n): the next n items' context
//
// A detector may split its images into several model calls: each call takes the next items
// in order. A call with no scope (or past its items) gets the default: no camera, not live.
// Threading: one scope per thread (thread-local); scopes nest.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace vigil {

struct CallItem {
  std::string_view camera;
  std::uint64_t seq = 0;
  std::int64_t captured_ms = 0;  // system clock, ms since the epoch; 0: unknown (now)
  bool live = false;             // may be dropped when older than the worker's max_age_ms
};

class CallContext {
 public:
  class Scope {
   public:
    explicit Scope(std::span<const CallItem> items) : saved_(current()) { current() = {items, 0}; }
    ~Scope() { current() = saved_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    struct State {
      std::span<const CallItem> items;
      std::size_t next = 0;
    } saved_;
    friend class CallContext;
  };

  // The context of the next `n` items of this thread's scope (fewer, or none, past its end),
  // and advances past them.
  static std::span<const CallItem> take(std::size_t n) {
    Scope::State& s = current();
    const std::size_t begin = std::min(s.next, s.items.size());
    const std::size_t end = std::min(begin + n, s.items.size());
    s.next = begin + n;
    return s.items.subspan(begin, end - begin);
  }

 private:
  static Scope::State& current() {
    thread_local Scope::State state;
    return state;
  }
};

}  // namespace vigil
