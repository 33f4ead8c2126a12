// vigil bench pipeline: runs the engine on a config and, in the same process, what it is
// judged against (see MEASURING.md), interleaved so that a noisy machine slows both sides:
//
//   R0  P1 R1 N1  P2 R2 N2  ...  Pn Rn Nn
//
// P = the engine (warm-up, then the measured window), R = the references (model-only: the
// detector alone on a prepared batch of the engine's mean batch size, same workers and
// threads; decode-only: each source decoding or rendering to nothing on the engine's capture
// threads), N = the naive
// thread-per-camera loop on the same config. Round r is judged against the mean of the
// references just before and just after it, and compared with the naive run right after it.
// Figures are medians over rounds, each with its spread (min, max). Prints one JSON object.
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
#include "vigil/cli/naive_loop.h"
#include "vigil/core/log.h"
#include "vigil/core/process_stats.h"
#include "vigil/infer/backend.h"
#include "vigil/infer/onnx_model.h"
#include "vigil/pipeline/engine.h"
#include "vigil/source/source.h"
#include "vigil_git_revision.h"

namespace vigil {

namespace {

using SteadyClock = std::chrono::steady_clock;

double seconds_since(SteadyTime t) { return std::chrono::duration<double>(SteadyClock::now() - t).count(); }

struct References {
  int batch = 1;
  double model_cpu_s_per_image = 0;
  double model_images_per_s = 0;
  double decode_cpu_s_per_frame = 0;
};

// The detector's model alone: `workers` threads, each with its own backend instance, each
// running one prepared batch in a loop, with the engine's intra-op threads.
Status measure_model(const ModelConfig& model, int workers, int batch, double seconds, References& out) {
  auto onnx = read_onnx_model(model.model_path());
  if (!onnx.ok()) return onnx.error();
  std::vector<std::int64_t> dims = onnx->inputs.at(0).dims;
  dims[0] = batch;
  for (std::size_t i = 1; i < dims.size(); ++i) {
    if (dims[i] > 0) continue;
    const int size = model.settings.input_size;
    if (size <= 0) return Error{ErrorCode::invalid_argument, model.model_path() + ": set input_size (the file's is dynamic)"};
    dims[i] = size;
  }
  struct Instance {
    std::unique_ptr<Backend> backend;
    Tensor input;
    std::vector<Tensor> outputs;
  };
  std::vector<Instance> instances(static_cast<std::size_t>(workers));
  for (std::size_t w = 0; w < instances.size(); ++w) {
    auto backend = create_backend({model.model_path(), {}, model.backend(), 0, model.precision()});
    if (!backend.ok()) return backend.error();
    instances[w].backend = std::move(backend).value();
    instances[w].input.reshape(dims);
    std::mt19937 rng(static_cast<unsigned>(w));
    std::uniform_real_distribution<float> px(-1, 1);
    for (std::size_t i = 0; i < instances[w].input.size(); ++i) instances[w].input.data()[i] = px(rng);
    for (int i = 0; i < 2; ++i) VIGIL_RETURN_IF_ERROR(instances[w].backend->infer(instances[w].input, instances[w].outputs));
  }
  std::atomic<std::int64_t> images{0};
  const double cpu0 = process_cpu_seconds();
  const auto t0 = SteadyClock::now();
  const auto until = t0 + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (auto& instance : instances) {
    threads.emplace_back([&, in = &instance] {
      while (SteadyClock::now() < until) {
        if (!in->backend->infer(in->input, in->outputs).ok()) return;
        images.fetch_add(in->input.dim(0));
      }
    });
  }
  for (auto& t : threads) t.join();
  const double wall = seconds_since(t0);
  out.batch = batch;
  out.model_cpu_s_per_image = (process_cpu_seconds() - cpu0) / std::max<double>(1, static_cast<double>(images.load()));
  out.model_images_per_s = static_cast<double>(images.load()) / wall;
  return {};
}

// The same inputs decoded (or rendered) to nothing, on as many threads as the engine
// captures with: one per file camera (its reader thread), the synthetic cameras shared
// round-robin by `render_threads` (the engine's timer threads). Sources run unpaced for
// `seconds`. Returns CPU seconds per frame.
Result<double> measure_decode(const std::vector<CameraConfig>& cameras, int render_threads, double seconds) {
  std::vector<std::vector<std::unique_ptr<Source>>> groups;
  std::vector<std::unique_ptr<Source>> synthetic;
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
    if (source.type == SourceType::synthetic) {
      synthetic.push_back(std::move(opened).value());
    } else {
      groups.emplace_back();
      groups.back().push_back(std::move(opened).value());
    }
  }
  if (!synthetic.empty()) {
    const std::size_t first = groups.size();
    groups.resize(first + std::min<std::size_t>(synthetic.size(), static_cast<std::size_t>(std::max(1, render_threads))));
    for (std::size_t i = 0; i < synthetic.size(); ++i) {
      groups[first + i % (groups.size() - first)].push_back(std::move(synthetic[i]));
    }
  }
  if (groups.empty()) return 0.0;
  std::atomic<std::int64_t> frames{0};
  std::atomic<bool> failed{false};
  const double cpu0 = process_cpu_seconds();
  const auto until = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (auto& group : groups) {
    threads.emplace_back([&, g = &group] {
      while (SteadyClock::now() < until && !failed) {
        for (auto& source : *g) {
          auto f = source->read();
          if (!f.ok()) {
            failed = true;
            return;
          }
          if (*f) frames.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  if (failed) return Error{ErrorCode::data_loss, "a source failed while measuring decode-only"};
  return (process_cpu_seconds() - cpu0) / std::max<double>(1, static_cast<double>(frames.load()));
}

Result<References> measure_references(const EngineConfig& config, int workers, int threads, int render_threads, int batch,
                                      double seconds) {
  References r;
  set_inference_threads(threads);
  const ModelConfig& model = config.models.at(config.cameras.at(0).detect.model);
  VIGIL_RETURN_IF_ERROR(measure_model(model, workers, batch, seconds, r));
  auto decode = measure_decode(config.cameras, render_threads, seconds);
  if (!decode.ok()) return decode.error();
  r.decode_cpu_s_per_frame = *decode;
  return r;
}

// One measured window of the engine.
struct PipelineRound {
  EngineStatus before, after;
  double wall = 0;
  double cpu_cores = 0;
  int threads = 0;
  double decoded = 0, inferred = 0, mean_batch = 1;
  std::vector<double> detect_rates;
  nlohmann::json drops = nlohmann::json::object();
};

Result<PipelineRound> run_pipeline(const EngineConfig& config, const BenchPipelineOptions& options) {
  auto engine = Engine::create(config);
  if (!engine.ok()) return engine.error();
  Engine& e = **engine;
  e.start();
  std::thread runner([&] { (void)e.run(std::nullopt); });
  std::this_thread::sleep_for(std::chrono::duration<double>(options.warmup_s));
  PipelineRound p;
  p.before = e.status();
  e.reset_histograms();
  const double cpu0 = process_cpu_seconds();
  const auto t0 = SteadyClock::now();
  p.threads = process_thread_count();
  std::this_thread::sleep_for(std::chrono::duration<double>(options.seconds));
  p.after = e.status();
  p.wall = seconds_since(t0);
  p.cpu_cores = (process_cpu_seconds() - cpu0) / p.wall;
  e.request_stop();
  runner.join();

  std::map<std::string, const CameraStatus*> start_of;
  for (const auto& c : p.before.cameras) start_of[c.id] = &c;
  for (const auto& c : p.after.cameras) {
    const CameraStatus* b = start_of.count(c.id) ? start_of[c.id] : nullptr;
    const double decoded = static_cast<double>(c.frames_decoded - (b ? b->frames_decoded : 0));
    const double inferred = static_cast<double>(c.frames_inferred - (b ? b->frames_inferred : 0));
    p.decoded += decoded;
    p.inferred += inferred;
    p.detect_rates.push_back(inferred / p.wall);
    p.drops[c.id] = c.frames_replaced - (b ? b->frames_replaced : 0);
  }
  std::uint64_t batches = 0, items = 0;
  for (std::size_t m = 0; m < p.after.models.size(); ++m) {
    batches += p.after.models[m].batches - p.before.models[m].batches;
    items += p.after.models[m].items - p.before.models[m].items;
  }
  p.mean_batch = batches ? static_cast<double>(items) / static_cast<double>(batches) : 1.0;
  return p;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// {"median", "min", "max"} of one figure over the rounds.
nlohmann::json spread(const std::vector<double>& v) {
  if (v.empty()) return nullptr;
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return {{"median", median(v)}, {"min", *lo}, {"max", *hi}};
}

}  // namespace

int bench_pipeline_command(const BenchPipelineOptions& options) {
  auto loaded = load_config_file(options.config_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", loaded.error().message.c_str());
    return 2;
  }
  EngineConfig config = std::move(*loaded);
  setup_logging(options.json ? "warn" : config.log_level);
  if (options.track != "config") {
    for (auto& camera : config.cameras) camera.track.enabled = options.track == "on";
  }
  config.sinks.clear();  // measure the engine, not the disk
  config.status_interval_s = 0;
  if (config.cameras.empty()) {
    std::fprintf(stderr, "vigil: error: %s: no cameras to measure\n", options.config_path.c_str());
    return 2;
  }
  std::optional<BackendKind> naive_backend;
  if (options.naive != "none") {
    auto kind = parse_backend_kind(options.naive);
    if (!kind.ok()) {
      std::fprintf(stderr, "vigil: error: --naive: %s\n", kind.error().message.c_str());
      return 2;
    }
    naive_backend = *kind;
  }
  const double cores = config.cpu_budget.cores > 0 ? config.cpu_budget.cores : hardware_cores();
  const auto fail = [](const char* what, const Error& error) {
    std::fprintf(stderr, "vigil: error: %s: %s\n", what, error.message.c_str());
    return error.code == ErrorCode::invalid_argument || error.code == ErrorCode::not_found ? 2 : 1;
  };

  // R0: before the first round, at batch 1 (the engine's batch is not known yet).
  const int workers = config.workers > 0 ? config.workers : std::max(1, static_cast<int>(cores));
  const int threads = config.inference_threads > 0 ? config.inference_threads : std::max(1, static_cast<int>(cores) / workers);
  const int render_threads = std::clamp(static_cast<int>(cores) / 2, 1, 4);  // as the engine's timer threads
  auto first_refs = measure_references(config, workers, threads, render_threads, 1, options.reference_s);
  if (!first_refs.ok()) return fail("reference", first_refs.error());
  std::vector<References> refs{*first_refs};

  nlohmann::json rounds = nlohmann::json::array();
  std::map<std::string, std::vector<double>> figures;
  for (int round = 0; round < options.repeat; ++round) {
    auto p = run_pipeline(config, options);
    if (!p.ok()) return fail("pipeline", p.error());
    const int batch = std::clamp(static_cast<int>(std::lround(p->mean_batch)), 1, config.models.at(config.cameras[0].detect.model).max_batch());
    auto after = measure_references(config, p->after.workers, p->after.inference_threads, p->after.timer_threads, batch,
                                    options.reference_s);
    if (!after.ok()) return fail("reference", after.error());
    refs.push_back(*after);
    const References& before = refs[refs.size() - 2];
    const double model_cpu = 0.5 * (before.model_cpu_s_per_image + after->model_cpu_s_per_image);
    const double decode_cpu = 0.5 * (before.decode_cpu_s_per_frame + after->decode_cpu_s_per_frame);
    const double pipeline_fps = p->decoded / p->wall;
    const double inferred_fps = p->inferred / p->wall;
    const double inferred_fraction = p->decoded > 0 ? p->inferred / p->decoded : 1.0;
    const double limit_fps = cores / (decode_cpu + inferred_fraction * model_cpu);
    const double needed_cores = inferred_fps * model_cpu + pipeline_fps * decode_cpu;
    nlohmann::json r = {
        {"round", round + 1},
        {"seconds", p->wall},
        {"pipeline_fps", pipeline_fps},
        {"inferred_fps", inferred_fps},
        {"limit_fps", limit_fps},
        {"throughput_efficiency", pipeline_fps / limit_fps},
        {"cpu_cores", p->cpu_cores},
        {"cpu_per_offered_frame", needed_cores > 0 ? p->cpu_cores / needed_cores : 0.0},
        {"needed_cores", needed_cores},
        {"mean_batch", p->mean_batch},
        {"frame_age_ms", {{"p50", p->after.age_p50_ms}, {"p99", p->after.age_p99_ms}}},
        {"latency_ms", {{"p50", p->after.end_to_end_p50_ms}, {"p99", p->after.end_to_end_p99_ms}}},
        {"detect_fps", {{"min", *std::min_element(p->detect_rates.begin(), p->detect_rates.end())},
                        {"max", *std::max_element(p->detect_rates.begin(), p->detect_rates.end())}}},
        {"drops", p->drops},
        {"threads", p->threads},
        {"references",
         {{"model_only_batch", after->batch},
          {"model_only_cpu_ms_per_image", {{"before", before.model_cpu_s_per_image * 1000}, {"after", after->model_cpu_s_per_image * 1000}}},
          {"model_only_images_per_s", {{"before", before.model_images_per_s}, {"after", after->model_images_per_s}}},
          {"decode_only_cpu_ms_per_frame", {{"before", before.decode_cpu_s_per_frame * 1000}, {"after", after->decode_cpu_s_per_frame * 1000}}}}}};
    for (const char* key : {"pipeline_fps", "inferred_fps", "limit_fps", "throughput_efficiency", "cpu_cores",
                            "cpu_per_offered_frame", "mean_batch"}) {
      figures[key].push_back(r[key].get<double>());
    }
    figures["model_only_images_per_s"].push_back(after->model_images_per_s);
    figures["model_only_cpu_ms_per_image"].push_back(model_cpu * 1000);
    figures["decode_only_cpu_ms_per_frame"].push_back(decode_cpu * 1000);
    figures["frame_age_p99_ms"].push_back(p->after.age_p99_ms);
    if (naive_backend) {
      auto n = run_naive_loop(config, options.warmup_s, options.seconds, *naive_backend);
      if (!n.ok()) return fail("naive loop", n.error());
      const double vigil_cpu_per_frame = p->cpu_cores / std::max(1e-9, pipeline_fps);
      const double naive_cpu_per_frame = n->cpu_cores / std::max(1e-9, n->frames_per_s);
      r["naive"] = {{"backend", n->backend},     {"frames_per_s", n->frames_per_s}, {"inferred_per_s", n->inferred_per_s},
                    {"cpu_cores", n->cpu_cores}, {"threads", n->threads}};
      r["vs_naive"] = {{"throughput_ratio", pipeline_fps / std::max(1e-9, n->frames_per_s)},
                       {"cpu_per_frame_ratio", naive_cpu_per_frame / std::max(1e-12, vigil_cpu_per_frame)}};
      figures["naive_fps"].push_back(n->frames_per_s);
      figures["naive_cpu_cores"].push_back(n->cpu_cores);
      figures["vs_naive_throughput"].push_back(r["vs_naive"]["throughput_ratio"].get<double>());
      figures["vs_naive_cpu_per_frame"].push_back(r["vs_naive"]["cpu_per_frame_ratio"].get<double>());
    }
    rounds.push_back(std::move(r));
  }

  nlohmann::json summary = nlohmann::json::object();
  for (const auto& [key, values] : figures) summary[key] = spread(values);
  nlohmann::json out = {{"benchmark", "pipeline"},
                        {"config", options.config_path},
                        {"track", options.track},
                        {"repeat", options.repeat},
                        {"seconds", options.seconds},
                        {"cameras", config.cameras.size()},
                        {"pipeline_fps", median(figures["pipeline_fps"])},
                        {"throughput_efficiency", median(figures["throughput_efficiency"])},
                        {"cpu_per_offered_frame", median(figures["cpu_per_offered_frame"])},
                        {"cpu_cores", median(figures["cpu_cores"])},
                        {"summary", summary},
                        {"rounds", rounds},
                        {"naive_backend", naive_backend ? std::string(to_string(*naive_backend)) : std::string("none")},
                        {"cpu_budget", {{"cores", cores}, {"enforce", config.cpu_budget.enforce}}},
                        {"machine", machine_description()},
                        {"build_type", VIGIL_BUILD_TYPE},
                        {"git_revision", VIGIL_GIT_REVISION}};
  if (naive_backend) out["vs_naive_throughput"] = median(figures["vs_naive_throughput"]);
  std::printf("%s\n", options.json ? out.dump().c_str() : out.dump(2).c_str());
  return 0;
}

}  // namespace vigil
