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

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <queue>
#include <thread>
#include <vector>

#include "vigil/core/frame.h"

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

  TaskId schedule(SteadyTime first_due, Task task);
  void cancel(TaskId id);
  std::size_t task_count() const;
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
  void loop();

  mutable std::mutex mu_;
  std::condition_variable wake_;      // new earliest task, or stopping
  std::condition_variable finished_;  // a task finished running
  std::priority_queue<Due, std::vector<Due>, std::greater<>> queue_;  // guarded by mu_
  std::map<TaskId, Entry> entries_;                                    // guarded by mu_
  TaskId next_id_ = 1;                                                 // guarded by mu_
  bool stopping_ = false;                                              // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace vigil
