#include <pthread.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <thread>

#include "vigil/cli/commands.h"
#include "vigil/cli/config_loader.h"
#include "vigil/core/log.h"
#include "vigil/pipeline/runner.h"

namespace vigil {

namespace {

// Waits for SIGINT/SIGTERM on its own thread (the signals are blocked everywhere else) and
// asks the runner to stop; SIGUSR1 ends the watcher when the run is over.
class SignalWatcher {
 public:
  explicit SignalWatcher(Runner& runner) {
    sigset_t set = signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([&runner, set] {
      int sig = 0;
      while (sigwait(&set, &sig) == 0) {
        if (sig == SIGUSR1) return;
        spdlog::info("signal {}: stopping", sig);
        runner.request_stop();
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

}  // namespace

int run_command(const RunOptions& options) {
  auto config = load_config_file(options.config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", config.error().message.c_str());
    return 2;
  }
  setup_logging(config->log_level);
  SignalWatcher::block_in_this_thread();  // before the runner starts any thread

  auto runner = Runner::create(*config);
  if (!runner.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", runner.error().message.c_str());
    return runner.error().code == ErrorCode::invalid_argument || runner.error().code == ErrorCode::not_found ? 2 : 1;
  }
  Status status;
  {
    SignalWatcher watcher(**runner);
    status = (*runner)->run(options.duration_s);
  }
  const RunStats& stats = (*runner)->stats();
  const double fps = stats.wall_seconds > 0 ? static_cast<double>(stats.frames()) / stats.wall_seconds : 0;
  const double cores = stats.wall_seconds > 0 ? stats.cpu_seconds / stats.wall_seconds : 0;
  std::uint64_t detected = 0;
  for (const auto& c : stats.cameras) detected += c.frames_detected;
  std::printf("vigil run: %zu cameras, %llu frames in %.1f s (%.1f fps), faces in %llu of %llu detected frames, "
              "%llu faces, %llu model calls for %llu images, CPU %.2f cores\n",
              stats.cameras.size(), static_cast<unsigned long long>(stats.frames()), stats.wall_seconds, fps,
              static_cast<unsigned long long>(stats.frames_with_faces()), static_cast<unsigned long long>(detected),
              static_cast<unsigned long long>(stats.detections()), static_cast<unsigned long long>(stats.model_calls),
              static_cast<unsigned long long>(stats.model_items), cores);
  for (const auto& sink : config->sinks) std::printf("vigil run: results in %s\n", sink.jsonl.path.c_str());
  std::fflush(stdout);
  if (!status.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", status.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace vigil
