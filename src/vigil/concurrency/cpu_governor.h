// CpuGovernor: keeps the process's measured CPU use at or under a budget (cores) by
// pacing the inference workers, not by an external tool.
//
// It is a token bucket over process CPU time: the allowance grows at target cores per
// second (target = budget x 0.95, headroom for the work already in flight), idle credit is
// capped at a small burst, and admit() parks a worker while the process has used more than
// its allowance. Capture threads are not paced directly: file decoders are held back by
// their bounded queues, which only drain as fast as the paced workers take frames.
//
// Threading: admit() from any worker, stop() from any thread.
#pragma once

#include <functional>

#include "vigil/core/frame.h"
#include "vigil/core/mutex.h"

namespace vigil {

class CpuGovernor {
 public:
  using CpuSeconds = std::function<double()>;

  // enforce false: admit() never waits (the budget only sizes the pools).
  CpuGovernor(double budget_cores, bool enforce, CpuSeconds cpu_seconds = {});

  // Waits until the process is within budget; false if stopped meanwhile.
  bool admit() EXCLUDES(mu_);
  void stop() EXCLUDES(mu_);

  // Seconds admit() would wait if called now, given process CPU `used_s` at `now` (pure;
  // exposed for tests).
  double wait_seconds(double used_s, SteadyTime now) EXCLUDES(mu_);

  double budget_cores() const { return budget_; }
  bool enforced() const { return enforce_; }

 private:
  const double budget_;
  const double target_;
  const bool enforce_;
  const double burst_core_s_;
  CpuSeconds cpu_seconds_;
  double wait_seconds_locked(double used_s, SteadyTime now) REQUIRES(mu_);

  Mutex mu_;
  CondVar stopped_cv_;
  bool stopped_ GUARDED_BY(mu_) = false;
  bool started_ GUARDED_BY(mu_) = false;
  SteadyTime base_time_ GUARDED_BY(mu_){};
  double base_cpu_s_ GUARDED_BY(mu_) = 0;
};

}  // namespace vigil
