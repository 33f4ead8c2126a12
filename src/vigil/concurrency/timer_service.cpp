#include "vigil/concurrency/timer_service.h"

namespace vigil {

TimerService::TimerService(int threads) {
  for (int i = 0; i < (threads > 0 ? threads : 1); ++i) threads_.emplace_back([this] { loop(); });
}

TimerService::~TimerService() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

TimerService::TaskId TimerService::schedule(SteadyTime first_due, Task task) {
  TaskId id = 0;
  {
    MutexLock lock(mu_);
    id = next_id_++;
    entries_[id] = Entry{std::move(task)};
    queue_.push({first_due, id});
  }
  wake_.notify_one();
  return id;
}

void TimerService::cancel(TaskId id) {
  MutexLock lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  it->second.cancelled = true;
  for (;;) {
    const auto e = entries_.find(id);
    if (e == entries_.end() || !e->second.running) break;
    finished_.wait(mu_);
  }
  entries_.erase(id);  // its queue entry, if any, is skipped when it comes up
}

std::size_t TimerService::task_count() const {
  MutexLock lock(mu_);
  return entries_.size();
}

void TimerService::loop() {
  MutexLock lock(mu_);
  for (;;) {
    if (stopping_) return;
    if (queue_.empty()) {
      wake_.wait(mu_);
      continue;
    }
    const Due next = queue_.top();
    auto it = entries_.find(next.id);
    if (it == entries_.end() || it->second.cancelled) {
      queue_.pop();
      continue;
    }
    if (std::chrono::steady_clock::now() < next.when) {
      wake_.wait_until(mu_, next.when);
      continue;
    }
    queue_.pop();
    Entry& entry = it->second;
    entry.running = true;
    Task task = entry.task;  // copied so the entry may be cancelled meanwhile
    lock.unlock();
    std::optional<SteadyTime> again = task(next.when);
    lock.lock();
    auto after = entries_.find(next.id);
    if (after != entries_.end()) {
      after->second.running = false;
      if (after->second.cancelled || !again) {
        if (!again) entries_.erase(after);
      } else {
        queue_.push({*again, next.id});
        if (queue_.top().id == next.id) wake_.notify_one();
      }
    }
    finished_.notify_all();
  }
}

}  // namespace vigil
