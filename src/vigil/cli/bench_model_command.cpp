#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "vigil/cli/commands.h"
#include "vigil/core/process_stats.h"
#include "vigil/infer/backend.h"
#include "vigil/vision/blazeface.h"
#include "vigil_git_revision.h"

#ifndef VIGIL_BUILD_TYPE
#define VIGIL_BUILD_TYPE "unknown"
#endif

namespace vigil {

int bench_model_command(const BenchModelOptions& options) {
  const int threads = options.threads > 0 ? options.threads : hardware_cores();
  set_inference_threads(threads);
  const int max_batch = *std::max_element(options.batches.begin(), options.batches.end());
  BlazeFaceConfig config;
  config.model_path = options.model_path;
  config.input_size = options.input_size;
  config.max_batch = max_batch;
  auto kind = parse_backend_kind(options.backend);
  if (!kind.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", kind.error().message.c_str());
    return 2;
  }
  config.backend = *kind;
  auto detector = BlazeFace::create(config);
  if (!detector.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", detector.error().message.c_str());
    return 2;
  }
  nlohmann::json results = nlohmann::json::array();
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> pixel(-1.0f, 1.0f);
  for (const int batch : options.batches) {
    Tensor& input = (*detector)->input_tensor();
    input.reshape({batch, options.input_size, options.input_size, 3});
    for (std::size_t i = 0; i < input.size(); ++i) input.data()[i] = pixel(rng);
    // Warm-up outside the measured window: first calls allocate and tune.
    for (int i = 0; i < 3; ++i) {
      if (Status s = (*detector)->run_model(input); !s.ok()) {
        std::fprintf(stderr, "vigil: error: batch %d: %s\n", batch, s.error().message.c_str());
        return 1;
      }
    }
    const double cpu_start = process_cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    const auto until = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   std::chrono::duration<double>(options.seconds));
    std::int64_t calls = 0;
    auto now = start;
    do {
      if (Status s = (*detector)->run_model(input); !s.ok()) {
        std::fprintf(stderr, "vigil: error: %s\n", s.error().message.c_str());
        return 1;
      }
      ++calls;
      now = std::chrono::steady_clock::now();
    } while (now < until);
    const double wall = std::chrono::duration<double>(now - start).count();
    const double cpu = process_cpu_seconds() - cpu_start;
    results.push_back({{"batch", batch},
                       {"calls", calls},
                       {"seconds", wall},
                       {"images_per_s", static_cast<double>(calls * batch) / wall},
                       {"ms_per_call", 1000.0 * wall / static_cast<double>(calls)},
                       {"cpu_cores", cpu / wall},
                       {"cpu_ms_per_image", 1000.0 * cpu / static_cast<double>(calls * batch)}});
  }
  nlohmann::json out = {{"benchmark", "model"},
                        {"model", options.model_path},
                        {"backend", (*detector)->backend_name()},
                        {"input_size", options.input_size},
                        {"threads", threads},
                        {"results", results},
                        {"machine", machine_description()},
                        {"build_type", VIGIL_BUILD_TYPE},
                        {"git_revision", VIGIL_GIT_REVISION}};
  if (options.json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("%s\n", out.dump(2).c_str());
  }
  return 0;
}

}  // namespace vigil
