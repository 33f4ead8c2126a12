// CameraState and CameraStateMachine: the life of one camera, with its allowed transitions
// written in one place (allowed_transition) instead of spread over the capture code.
//
//   connecting ──▶ live ──▶ stalled ──▶ connecting ...      any ──▶ failed | stopped
//     │  ▲          │  ▲        │                            (both final)
//     │  └──────────┘  └────────┘ (disconnected; data resumes)
//     └──────────────────▶ stalled (opened, but silent)
//
// A request for a transition the table does not allow is refused and counted (a bug, or a
// late report from a capture thread after the camera was stopped), never applied.
// Time is passed in, so tests drive the machine with any clock.
// Threading: transition() from the camera's capture thread or timer task; state() and
// history() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "vigil/core/mutex.h"
#include "vigil/core/frame.h"

namespace vigil {

enum class CameraState : std::uint8_t { connecting, live, stalled, failed, stopped };
const char* to_string(CameraState state);

// Whether a camera may go from `from` to `to` (a state to itself is not a transition).
bool allowed_transition(CameraState from, CameraState to);

class CameraStateMachine {
 public:
  static constexpr std::size_t kHistory = 32;
  struct Entry {
    CameraState state;
    SteadyTime at;
  };
  // Called after each applied transition, on the calling thread, outside the lock.
  using Listener = std::function<void(CameraState from, CameraState to, SteadyTime at)>;

  explicit CameraStateMachine(SteadyTime created, Listener listener = {});

  // Applies the transition if the table allows it; returns whether the state changed.
  bool transition(CameraState to, SteadyTime now);

  CameraState state() const { return state_.load(std::memory_order_acquire); }
  bool final() const { return state() == CameraState::failed || state() == CameraState::stopped; }
  // States entered, oldest first (the last kHistory), the initial one included.
  std::vector<Entry> history() const;
  std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  Listener listener_;
  std::atomic<CameraState> state_{CameraState::connecting};
  mutable Mutex mu_;
  std::deque<Entry> history_ GUARDED_BY(mu_);
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace vigil
