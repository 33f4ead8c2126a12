// SignalWatcher: SIGINT and SIGTERM handled on a thread of their own (the signals are blocked
// everywhere else), calling `stop`; what `vigil run`, `vigil ingest` and `vigil worker` stop by.
#pragma once

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <functional>
#include <thread>

namespace vigil {

// SIGUSR1 ends the watcher when the run is over.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void()> stop) {
    sigset_t set = signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([stop = std::move(stop), set] {
      int sig = 0;
      while (sigwait(&set, &sig) == 0) {
        if (sig == SIGUSR1) return;
        spdlog::info("signal {}: stopping", sig);
        stop();
      }
    });
  }
  ~SignalWatcher() {
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }
  // Blocks the signals in the calling thread (call in main before any thread starts).
  static void block_in_this_thread() {
    sigset_t set = signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

 private:
  static sigset_t signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    return set;
  }
  std::thread thread_;
};

}  // namespace vigil
