// Soak test of the live engine: runs a config for a long time while cameras are removed
// and added back every few seconds (and the config's synthetic cameras inject faults),
// then checks that resident memory, threads and open files end where they were after
// warm-up (within 5%). Prints one JSON object; exit status 1 if a resource grew.
//
//   build/release/bench/vigil_soak --config bench/configs/soak16.yaml --seconds 600
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <unistd.h>

#include "vigil/cli/config_loader.h"
#include "vigil/core/log.h"
#include "vigil/core/process_setup.h"
#include "vigil/core/process_stats.h"
#include "vigil/pipeline/engine.h"

namespace {

struct Resources {
  double rss_mb = 0;
  int threads = 0;
  int open_files = 0;
};

Resources sample() {
  Resources r;
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  r.rss_mb = static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
  r.threads = vigil::process_thread_count();
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++r.open_files;
  return r;
}

nlohmann::json to_json(const Resources& r) {
  return {{"rss_mb", r.rss_mb}, {"threads", r.threads}, {"open_files", r.open_files}};
}

}  // namespace

int main(int argc, char** argv) {
  vigil::configure_process();
  CLI::App app{"vigil soak: long run with camera churn and faults; resources must not grow"};
  std::string config_path;
  double seconds = 600, warmup = 30, churn_every = 3;
  app.add_option("-c,--config", config_path)->required();
  app.add_option("-s,--seconds", seconds, "total seconds, warm-up included");
  app.add_option("--warmup", warmup, "seconds before the baseline is taken");
  app.add_option("--churn-every", churn_every, "seconds between a camera removal and re-adding it");
  CLI11_PARSE(app, argc, argv);
  auto config = vigil::load_config_file(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "error: %s\n", config.error().message.c_str());
    return 2;
  }
  vigil::setup_logging("warn");
  config->sinks.clear();
  config->status_interval_s = 0;
  auto engine = vigil::Engine::create(*config);
  if (!engine.ok()) {
    std::fprintf(stderr, "error: %s\n", engine.error().message.c_str());
    return 2;
  }
  vigil::Engine& e = **engine;
  e.start();
  std::thread runner([&] { (void)e.run(std::nullopt); });

  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  std::mt19937 rng(1);
  std::uniform_int_distribution<std::size_t> pick(0, config->cameras.size() - 1);
  std::optional<Resources> baseline;
  std::int64_t churns = 0;
  while (elapsed() < seconds) {
    std::this_thread::sleep_for(std::chrono::duration<double>(churn_every));
    // Remove one camera and add it back under the same id.
    const vigil::CameraConfig& camera = config->cameras[pick(rng)];
    if (!e.remove_camera(camera.id).ok() || !e.add_camera(camera).ok()) {
      std::fprintf(stderr, "error: churn of %s failed\n", camera.id.c_str());
      return 1;
    }
    ++churns;
    if (!baseline && elapsed() >= warmup) baseline = sample();
  }
  const Resources end = sample();
  const vigil::EngineStatus status = e.status();
  e.request_stop();
  runner.join();
  if (!baseline) baseline = end;
  std::uint64_t inferred = 0, reconnects = 0, errors = 0;
  for (const auto& c : status.cameras) {
    inferred += c.frames_inferred;
    reconnects += c.reconnects;
    errors += c.decode_errors;
  }
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 1.0; };
  const double rss_ratio = ratio(end.rss_mb, baseline->rss_mb);
  const double threads_ratio = ratio(end.threads, baseline->threads);
  const double files_ratio = ratio(end.open_files, baseline->open_files);
  const bool ok = rss_ratio <= 1.05 && threads_ratio <= 1.05 && files_ratio <= 1.05;
  nlohmann::json out = {{"benchmark", "soak"},
                        {"config", config_path},
                        {"seconds", elapsed()},
                        {"cameras", config->cameras.size()},
                        {"churns", churns},
                        {"frames_inferred", inferred},
                        {"reconnects", reconnects},
                        {"injected_errors", errors},
                        {"after_warmup", to_json(*baseline)},
                        {"end", to_json(end)},
                        {"rss_ratio", rss_ratio},
                        {"threads_ratio", threads_ratio},
                        {"open_files_ratio", files_ratio},
                        {"within_5_percent", ok},
                        {"machine", vigil::machine_description()}};
  std::printf("%s\n", out.dump().c_str());
  return ok ? 0 : 1;
}
