#include "vigil/concurrency/cpu_governor.h"

#include <algorithm>

#include "vigil/core/process_stats.h"

namespace vigil {

CpuGovernor::CpuGovernor(double budget_cores, bool enforce, CpuSeconds cpu_seconds)
    : budget_(budget_cores),
      target_(budget_cores * 0.95),
      enforce_(enforce && budget_cores > 0),
      burst_core_s_(budget_cores * 0.02),
      cpu_seconds_(cpu_seconds ? std::move(cpu_seconds) : CpuSeconds(&process_cpu_seconds)) {}

double CpuGovernor::wait_seconds(double used_s, SteadyTime now) {
  MutexLock lock(mu_);
  return wait_seconds_locked(used_s, now);
}

double CpuGovernor::wait_seconds_locked(double used_s, SteadyTime now) {
  if (!started_) {
    started_ = true;
    base_time_ = now;
    base_cpu_s_ = used_s;
    return 0;
  }
  const double elapsed = std::chrono::duration<double>(now - base_time_).count();
  const double credit = target_ * elapsed + burst_core_s_ - (used_s - base_cpu_s_);
  if (credit > burst_core_s_) {
    // Idle credit beyond the burst is forgotten: an idle minute must not buy a busy one.
    base_time_ = now;
    base_cpu_s_ = used_s;
    return 0;
  }
  return credit >= 0 ? 0 : -credit / target_;
}

bool CpuGovernor::admit() {
  if (!enforce_) return true;
  MutexLock lock(mu_);
  for (;;) {
    if (stopped_) return false;
    const double wait = wait_seconds_locked(cpu_seconds_(), std::chrono::steady_clock::now());
    if (wait <= 0) return true;
    // At least 1 ms per wait: never a busy loop.
    const auto d = std::chrono::duration<double>(std::max(wait, 0.001));
    stopped_cv_.wait_for(mu_, std::chrono::duration_cast<std::chrono::microseconds>(d));
  }
}

void CpuGovernor::stop() {
  {
    MutexLock lock(mu_);
    stopped_ = true;
  }
  stopped_cv_.notify_all();
}

}  // namespace vigil
