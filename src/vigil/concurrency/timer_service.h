// TimerService: runs many periodic tasks on a few shared threads.
//
// Live synthetic cameras (and anything else that ticks) schedule a task here instead of
// owning a thread: a thousand cameras cost a priority-queue entry each, not a thread each.
// A task runs at its due time and returns when it wants to run next (or nothing to end).
// Threads park on a condition variable until the earliest due time; nothing polls.
//
// Threading: schedule() and cancel() from any thread. cancel() waits until the task is not
// running, so state the task captures may be destroyed right after cancel() returns. A task
// must not call cancel() on itself.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <thread>
#include <vector>

#include "vigil/core/frame.h"
#include "vigil/core/mutex.h"

namespace vigil {

class TimerService {
 public:
  using TaskId = std::uint64_t;
  // Called with the instant it was due; returns the next due instant, or nullopt to stop.
  using Task = std::function<std::optional<SteadyTime>(SteadyTime due)>;

  explicit TimerService(int threads);
  ~TimerService();
  TimerService(const TimerService&) = delete;
  TimerService& operator=(const TimerService&) = delete;

  TaskId schedule(SteadyTime first_due, Task task) EXCLUDES(mu_);
  void cancel(TaskId id) EXCLUDES(mu_);
  std::size_t task_count() const EXCLUDES(mu_);
  int thread_count() const { return static_cast<int>(threads_.size()); }

 private:
  struct Entry {
    Task task;
    bool running = false;
    bool cancelled = false;
  };
  struct Due {
    SteadyTime when;
    TaskId id;
    bool operator>(const Due& o) const { return when > o.when || (when == o.when && id > o.id); }
  };
  void loop() EXCLUDES(mu_);

  mutable Mutex mu_;
  CondVar wake_;      // new earliest task, or stopping
  CondVar finished_;  // a task finished running
  std::priority_queue<Due, std::vector<Due>, std::greater<>> queue_ GUARDED_BY(mu_);
  std::map<TaskId, Entry> entries_ GUARDED_BY(mu_);
  TaskId next_id_ GUARDED_BY(mu_) = 1;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace vigil
