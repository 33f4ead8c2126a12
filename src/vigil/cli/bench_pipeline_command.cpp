// vigil bench pipeline: runs the engine on a config and, in the same process, measures the
// references it is judged against (see MEASURING.md): model-only (the detector alone on a
// prepared batch, same workers, threads and batch size) and decode-only (each source alone,
// decoding or rendering to nothing). Prints one JSON object.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "vigil/cli/commands.h"
#include "vigil/cli/config_loader.h"
#include "vigil/core/log.h"
#include "vigil/core/process_stats.h"
#include "vigil/infer/backend.h"
#include "vigil/pipeline/engine.h"
#include "vigil/source/source.h"
#include "vigil/vision/blazeface.h"
#include "vigil_git_revision.h"

namespace vigil {

namespace {

using SteadyClock = std::chrono::steady_clock;

double seconds_since(SteadyTime t) { return std::chrono::duration<double>(SteadyClock::now() - t).count(); }

struct ModelReference {
  double cpu_s_per_image = 0;
  double images_per_s = 0;
  int batch = 1;
};

// The detector alone: `workers` threads, each with its own instance, each running one
// prepared batch in a loop, with the engine's intra-op threads.
Result<ModelReference> measure_model(const ModelConfig& model, int workers, int batch, double seconds) {
  std::vector<std::unique_ptr<BlazeFace>> detectors;
  BlazeFaceConfig config = model.blazeface;
  config.max_batch = std::max(batch, 1);
  for (int w = 0; w < workers; ++w) {
    auto d = BlazeFace::create(config);
    if (!d.ok()) return d.error();
    Tensor& input = (*d)->input_tensor();
    input.reshape({batch, config.input_size, config.input_size, 3});
    std::mt19937 rng(static_cast<unsigned>(w));
    std::uniform_real_distribution<float> px(-1, 1);
    for (std::size_t i = 0; i < input.size(); ++i) input.data()[i] = px(rng);
    for (int i = 0; i < 2; ++i) VIGIL_RETURN_IF_ERROR((*d)->run_model(input));  // warm-up
    detectors.push_back(std::move(d).value());
  }
  std::atomic<std::int64_t> images{0};
  const double cpu0 = process_cpu_seconds();
  const auto t0 = SteadyClock::now();
  const auto until = t0 + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (auto& d : detectors) {
    threads.emplace_back([&, det = d.get()] {
      while (SteadyClock::now() < until) {
        if (!det->run_model(det->input_tensor()).ok()) return;
        images.fetch_add(det->input_tensor().dim(0));
      }
    });
  }
  for (auto& t : threads) t.join();
  const double wall = seconds_since(t0);
  ModelReference r;
  r.batch = batch;
  r.cpu_s_per_image = (process_cpu_seconds() - cpu0) / std::max<double>(1, static_cast<double>(images.load()));
  r.images_per_s = static_cast<double>(images.load()) / wall;
  return r;
}

// The same inputs decoded (or rendered) to nothing: every camera's source, unpaced, read
// round-robin on one thread for `seconds`. Returns CPU seconds per frame.
Result<double> measure_decode(const std::vector<CameraConfig>& cameras, double seconds) {
  std::vector<std::unique_ptr<Source>> sources;
  for (const auto& cam : cameras) {
    SourceConfig source = cam.source;
    source.live = false;
    source.loop = true;
    source.realtime = false;
    source.faults = FaultConfig{};
    if (source.type == SourceType::stream) continue;  // a live stream cannot be replayed
    auto opened = open_source(source, cam.id);
    if (!opened.ok()) return with_context(opened.error(), "camera " + cam.id);
    (void)(*opened)->read();  // warm-up
    sources.push_back(std::move(opened).value());
  }
  if (sources.empty()) return 0.0;
  std::int64_t frames = 0;
  const double cpu0 = process_cpu_seconds();
  const auto t0 = SteadyClock::now();
  while (seconds_since(t0) < seconds) {
    for (auto& source : sources) {
      auto f = source->read();
      if (!f.ok()) return f.error();
      if (*f) ++frames;
    }
  }
  return (process_cpu_seconds() - cpu0) / std::max<double>(1, static_cast<double>(frames));
}

}  // namespace

int bench_pipeline_command(const BenchPipelineOptions& options) {
  auto config = load_config_file(options.config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", config.error().message.c_str());
    return 2;
  }
  setup_logging(options.json ? "warn" : config->log_level);
  if (options.track != "config") {
    for (auto& camera : config->cameras) camera.track.enabled = options.track == "on";
  }
  config->sinks.clear();  // measure the engine, not the disk
  config->status_interval_s = 0;

  auto engine = Engine::create(*config);
  if (!engine.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", engine.error().message.c_str());
    return 2;
  }
  Engine& e = **engine;
  e.start();
  std::thread runner([&] { (void)e.run(std::nullopt); });
  std::this_thread::sleep_for(std::chrono::duration<double>(options.warmup_s));
  const EngineStatus before = e.status();
  e.reset_histograms();
  const double cpu0 = process_cpu_seconds();
  const auto t0 = SteadyClock::now();
  const int threads_running = process_thread_count();
  std::this_thread::sleep_for(std::chrono::duration<double>(options.seconds));
  const EngineStatus after = e.status();
  const double wall = seconds_since(t0);
  const double cpu_cores = (process_cpu_seconds() - cpu0) / wall;
  e.request_stop();
  runner.join();

  // Per camera, over the window.
  std::map<std::string, const CameraStatus*> start_of;
  for (const auto& c : before.cameras) start_of[c.id] = &c;
  double decoded_total = 0, inferred_total = 0;
  nlohmann::json drops = nlohmann::json::object();
  std::vector<double> detect_rates;
  for (const auto& c : after.cameras) {
    const CameraStatus* b = start_of.count(c.id) ? start_of[c.id] : nullptr;
    const double decoded = static_cast<double>(c.frames_decoded - (b ? b->frames_decoded : 0));
    const double inferred = static_cast<double>(c.frames_inferred - (b ? b->frames_inferred : 0));
    decoded_total += decoded;
    inferred_total += inferred;
    detect_rates.push_back(inferred / wall);
    drops[c.id] = c.frames_replaced - (b ? b->frames_replaced : 0);
  }
  std::uint64_t batches = 0, items = 0;
  for (std::size_t m = 0; m < after.models.size(); ++m) {
    batches += after.models[m].batches - before.models[m].batches;
    items += after.models[m].items - before.models[m].items;
  }
  const double mean_batch = batches ? static_cast<double>(items) / static_cast<double>(batches) : 1.0;

  // References, measured now that the engine is stopped (same process, same machine).
  const ModelConfig& model = config->models.begin()->second;
  const int batch = std::clamp(static_cast<int>(std::lround(mean_batch)), 1, model.blazeface.max_batch);
  auto model_ref = measure_model(model, after.workers, batch, options.reference_s);
  if (!model_ref.ok()) {
    std::fprintf(stderr, "vigil: error: model reference: %s\n", model_ref.error().message.c_str());
    return 1;
  }
  auto decode_cost = measure_decode(config->cameras, std::max(2.0, options.reference_s));
  if (!decode_cost.ok()) {
    std::fprintf(stderr, "vigil: error: decode reference: %s\n", decode_cost.error().message.c_str());
    return 1;
  }
  const double needed_cores = inferred_total / wall * model_ref->cpu_s_per_image + decoded_total / wall * *decode_cost;
  const double cores = config->cpu_budget.cores > 0 ? config->cpu_budget.cores : hardware_cores();
  const double mean_decode = *decode_cost;
  const double inferred_fraction = decoded_total > 0 ? inferred_total / decoded_total : 1.0;
  const double limit_fps = cores / (mean_decode + inferred_fraction * model_ref->cpu_s_per_image);
  const double pipeline_fps = decoded_total / wall;

  nlohmann::json rates = nlohmann::json::object();
  if (!detect_rates.empty()) {
    double sum = 0;
    for (double r : detect_rates) sum += r;
    rates = {{"min", *std::min_element(detect_rates.begin(), detect_rates.end())},
             {"max", *std::max_element(detect_rates.begin(), detect_rates.end())},
             {"mean", sum / static_cast<double>(detect_rates.size())}};
  }
  nlohmann::json out = {
      {"benchmark", "pipeline"},
      {"config", options.config_path},
      {"track", options.track},
      {"seconds", wall},
      {"cameras", after.cameras.size()},
      {"pipeline_fps", pipeline_fps},
      {"inferred_fps", inferred_total / wall},
      {"limit_fps", limit_fps},
      {"throughput_efficiency", pipeline_fps / limit_fps},
      {"cpu_cores", cpu_cores},
      {"cpu_per_offered_frame", needed_cores > 0 ? cpu_cores / needed_cores : 0.0},
      {"needed_cores", needed_cores},
      {"frame_age_ms", {{"p50", after.age_p50_ms}, {"p99", after.age_p99_ms}}},
      {"latency_ms", {{"p50", after.end_to_end_p50_ms}, {"p99", after.end_to_end_p99_ms}}},
      {"batching_factor", items ? static_cast<double>(batches) / static_cast<double>(items) : 0.0},
      {"mean_batch", mean_batch},
      {"detect_fps", rates},
      {"drops", drops},
      {"references",
       {{"model_only", {{"batch", model_ref->batch}, {"workers", after.workers},
                        {"cpu_ms_per_image", model_ref->cpu_s_per_image * 1000}, {"images_per_s", model_ref->images_per_s}}},
        {"decode_only_cpu_ms_per_frame", mean_decode * 1000}}},
      {"workers", after.workers},
      {"inference_threads", after.inference_threads},
      {"timer_threads", after.timer_threads},
      {"threads", threads_running},
      {"cpu_budget", {{"cores", cores}, {"enforce", config->cpu_budget.enforce}}},
      {"machine", machine_description()},
      {"build_type", VIGIL_BUILD_TYPE},
      {"git_revision", VIGIL_GIT_REVISION}};
  std::printf("%s\n", options.json ? out.dump().c_str() : out.dump(2).c_str());
  return 0;
}

}  // namespace vigil
