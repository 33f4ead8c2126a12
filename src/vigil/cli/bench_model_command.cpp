// vigil bench model: one ONNX model, each backend x intra-op threads x batch size, on a
// prepared batch in a loop. Settings are interleaved in rounds (round 1 measures every
// setting, then round 2...), so a slow minute on a shared machine lands on all of them;
// each figure is the median over rounds with its spread, and each backend's speed-up over
// the first backend is taken per round (same minute) before the median.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "vigil/cli/commands.h"
#include "vigil/core/process_stats.h"
#include "vigil/infer/backend.h"
#include "vigil/infer/onnx_model.h"
#include "vigil_git_revision.h"

#ifndef VIGIL_BUILD_TYPE
#define VIGIL_BUILD_TYPE "unknown"
#endif

namespace vigil {

namespace {

struct Setting {
  std::string backend;
  int threads = 1;
  int batch = 1;
};

struct Sample {
  double ms_per_image = 0;
  double cpu_cores = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0 : (n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

nlohmann::json summary(const std::vector<double>& v, int digits_scale = 1000) {
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  const auto round = [&](double x) { return std::round(x * digits_scale) / digits_scale; };
  return {{"median", round(median(v))}, {"min", round(*lo)}, {"max", round(*hi)}};
}

Result<Sample> measure(Backend& backend, Tensor& input, std::vector<Tensor>& outputs, double seconds) {
  for (int i = 0; i < 2; ++i) {  // warm-up: first calls plan and allocate
    VIGIL_RETURN_IF_ERROR(backend.infer(input, outputs));
  }
  const double cpu_start = process_cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
  std::int64_t calls = 0;
  auto now = start;
  do {
    VIGIL_RETURN_IF_ERROR(backend.infer(input, outputs));
    ++calls;
    now = std::chrono::steady_clock::now();
  } while (now < until);
  const double wall = std::chrono::duration<double>(now - start).count();
  const double images = static_cast<double>(calls * input.dim(0));
  return Sample{1000.0 * wall / images, (process_cpu_seconds() - cpu_start) / wall};
}

}  // namespace

int bench_model_command(const BenchModelOptions& options) {
  auto model = read_onnx_model(options.model_path);
  if (!model.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", model.error().message.c_str());
    return 2;
  }
  std::vector<std::int64_t> item_dims = model->inputs[0].dims;
  if (item_dims.empty() || std::any_of(item_dims.begin() + 1, item_dims.end(), [](std::int64_t d) { return d <= 0; })) {
    std::fprintf(stderr, "vigil: error: %s: input %s needs fixed sizes after the batch axis\n", options.model_path.c_str(),
                 dims_string(item_dims).c_str());
    return 2;
  }
  std::vector<Setting> settings;
  for (const std::string& backend : options.backends) {
    for (const int t : options.threads) {
      for (const int b : options.batches) settings.push_back({backend, t > 0 ? t : hardware_cores(), b});
    }
  }
  // One loaded backend per (backend, threads): XNNPACK sizes its thread pool at load.
  std::map<std::pair<std::string, int>, std::unique_ptr<Backend>> loaded;
  std::map<std::pair<std::string, int>, std::vector<std::string>> refusals;  // backend auto: who refused, why
  for (const Setting& s : settings) {
    auto& slot = loaded[{s.backend, s.threads}];
    if (slot) continue;
    set_inference_threads(s.threads);
    // "onednn-bf16": oneDNN at bf16 precision.
    const bool bf16 = s.backend.ends_with("-bf16");
    auto kind = parse_backend_kind(bf16 ? s.backend.substr(0, s.backend.size() - 5) : s.backend);
    BackendOptions backend_options{options.model_path, {}, kind.ok() ? *kind : BackendKind::automatic};
    backend_options.precision = bf16 ? Precision::bf16 : Precision::fp32;
    backend_options.threads = s.threads;
    backend_options.refusals = &refusals[{s.backend, s.threads}];
    auto backend = kind.ok() ? create_backend(backend_options) : Result<std::unique_ptr<Backend>>(kind.error());
    if (!backend.ok()) {
      std::fprintf(stderr, "vigil: error: %s: %s\n", s.backend.c_str(), backend.error().message.c_str());
      return 2;
    }
    slot = std::move(backend).value();
    for (const std::string& why : refusals[{s.backend, s.threads}]) {
      std::fprintf(stderr, "vigil bench model: %s took %s; refused by %s\n", s.backend.c_str(), slot->name().c_str(), why.c_str());
    }
  }
  Tensor input;
  std::vector<Tensor> outputs;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<std::vector<Sample>> samples(settings.size());
  for (int round = 0; round < options.rounds; ++round) {
    for (std::size_t i = 0; i < settings.size(); ++i) {
      const Setting& s = settings[i];
      item_dims[0] = s.batch;
      input.reshape(item_dims);
      for (std::size_t k = 0; k < input.size(); ++k) input.data()[k] = value(rng);
      set_inference_threads(s.threads);  // OpenCV's setting is read per call
      auto sample = measure(*loaded[{s.backend, s.threads}], input, outputs, options.seconds);
      if (!sample.ok()) {
        std::fprintf(stderr, "vigil: error: %s, batch %d: %s\n", s.backend.c_str(), s.batch, sample.error().message.c_str());
        return 1;
      }
      samples[i].push_back(*sample);
    }
  }
  nlohmann::json results = nlohmann::json::array();
  for (std::size_t i = 0; i < settings.size(); ++i) {
    const Setting& s = settings[i];
    std::vector<double> ms, ips, cores, speedup;
    // The same threads and batch on the first backend, for the per-round speed-up.
    const auto base = std::find_if(settings.begin(), settings.end(), [&](const Setting& o) {
      return o.backend == settings[0].backend && o.threads == s.threads && o.batch == s.batch;
    });
    const std::size_t base_index = static_cast<std::size_t>(base - settings.begin());
    for (std::size_t r = 0; r < samples[i].size(); ++r) {
      ms.push_back(samples[i][r].ms_per_image);
      ips.push_back(1000.0 / samples[i][r].ms_per_image);
      cores.push_back(samples[i][r].cpu_cores);
      speedup.push_back(samples[base_index][r].ms_per_image / samples[i][r].ms_per_image);
    }
    results.push_back({{"backend", s.backend},
                       {"backend_name", loaded[{s.backend, s.threads}]->name()},
                       {"refused", refusals[{s.backend, s.threads}]},
                       {"threads", s.threads},
                       {"batch", s.batch},
                       {"ms_per_image", summary(ms)},
                       {"images_per_s", summary(ips, 10)},
                       {"cpu_cores", summary(cores, 100)},
                       {"speedup_vs_" + settings[0].backend, summary(speedup, 100)}});
  }
  nlohmann::json out = {{"benchmark", "model"},
                        {"model", options.model_path},
                        {"input", dims_string(model->inputs[0].dims)},
                        {"rounds", options.rounds},
                        {"seconds_per_setting", options.seconds},
                        {"results", results},
                        {"machine", machine_description()},
                        {"build_type", VIGIL_BUILD_TYPE},
                        {"git_revision", VIGIL_GIT_REVISION}};
  std::printf("%s\n", options.json ? out.dump().c_str() : out.dump(2).c_str());
  return 0;
}

}  // namespace vigil
