#include "vigil/core/camera_state.h"

namespace vigil {

const char* to_string(CameraState state) {
  switch (state) {
    case CameraState::connecting: return "connecting";
    case CameraState::live: return "live";
    case CameraState::stalled: return "stalled";
    case CameraState::failed: return "failed";
    case CameraState::stopped: return "stopped";
  }
  return "unknown";
}

bool allowed_transition(CameraState from, CameraState to) {
  using S = CameraState;
  if (from == to) return false;
  if (from == S::failed || from == S::stopped) return false;  // final
  if (to == S::failed || to == S::stopped) return true;
  switch (from) {
    case S::connecting: return to == S::live || to == S::stalled;  // data, or opened but silent
    case S::live: return to == S::stalled || to == S::connecting;  // silent, or disconnected
    case S::stalled: return to == S::connecting || to == S::live;  // reconnect, or data resumes
    default: return false;
  }
}

CameraStateMachine::CameraStateMachine(SteadyTime created, Listener listener) : listener_(std::move(listener)) {
  history_.push_back({CameraState::connecting, created});
}

bool CameraStateMachine::transition(CameraState to, SteadyTime now) {
  CameraState from;
  {
    MutexLock lock(mu_);
    from = state_.load(std::memory_order_relaxed);
    if (from == to) return false;
    if (!allowed_transition(from, to)) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    state_.store(to, std::memory_order_release);
    history_.push_back({to, now});
    if (history_.size() > kHistory) history_.pop_front();
  }
  if (listener_) listener_(from, to, now);
  return true;
}

std::vector<CameraStateMachine::Entry> CameraStateMachine::history() const {
  MutexLock lock(mu_);
  return {history_.begin(), history_.end()};
}

}  // namespace vigil
