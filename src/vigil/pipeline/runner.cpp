#include "vigil/pipeline/runner.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "vigil/core/process_stats.h"
#include "vigil/infer/backend.h"
#include "vigil/sink/jsonl_sink.h"
#include "vigil/source/source.h"
#include "vigil/vision/blazeface.h"

namespace vigil {

std::uint64_t RunStats::frames() const {
  std::uint64_t n = 0;
  for (const auto& c : cameras) n += c.frames;
  return n;
}
std::uint64_t RunStats::frames_with_faces() const {
  std::uint64_t n = 0;
  for (const auto& c : cameras) n += c.frames_with_faces;
  return n;
}
std::uint64_t RunStats::detections() const {
  std::uint64_t n = 0;
  for (const auto& c : cameras) n += c.detections;
  return n;
}

namespace {

struct Camera {
  CameraConfig config;
  std::unique_ptr<Source> source;
  std::size_t model_index = 0;
  bool finished = false;
};

struct Model {
  std::string name;
  std::unique_ptr<BlazeFace> detector;
  // Reused every round.
  std::vector<FrameRef> frames;
  std::vector<std::size_t> cameras;
  std::vector<const Image*> images;
  std::vector<Detections> results;
};

}  // namespace

struct Runner::Impl {
  EngineConfig config;
  std::vector<Camera> cameras;
  std::vector<Model> models;
  std::vector<std::unique_ptr<Sink>> sinks;
  std::atomic<bool> stop{false};
};

Runner::Runner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Runner::~Runner() {
  for (auto& sink : impl_->sinks) (void)sink->close();
}

Result<std::unique_ptr<Runner>> Runner::create(const EngineConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  set_inference_threads(config.inference_threads);

  std::map<std::string, std::size_t> model_index;
  for (const auto& [name, model_config] : config.models) {
    auto detector = BlazeFace::create(model_config.blazeface);
    if (!detector.ok()) return with_context(detector.error(), "model " + name);
    model_index[name] = impl->models.size();
    impl->models.push_back(Model{name, std::move(detector).value(), {}, {}, {}, {}});
  }
  for (const auto& camera_config : config.cameras) {
    const auto found = model_index.find(camera_config.detect.model);
    if (found == model_index.end()) {
      return Error{ErrorCode::invalid_argument,
                   "camera " + camera_config.id + ": unknown model '" + camera_config.detect.model + "'"};
    }
    auto source = open_source(camera_config.source, camera_config.id);
    if (!source.ok()) return with_context(source.error(), "camera " + camera_config.id);
    spdlog::info("camera {}: {}", camera_config.id, (*source)->info().description);
    impl->cameras.push_back(Camera{camera_config, std::move(source).value(), found->second, false});
  }
  for (const auto& sink_config : config.sinks) {
    auto sink = JsonlSink::open(sink_config.jsonl);
    if (!sink.ok()) return with_context(sink.error(), "sink " + sink_config.jsonl.path);
    if ((*sink)->repaired_bytes() > 0) {
      spdlog::warn("sink {}: removed a torn last line ({} bytes) left by an earlier crash", sink_config.jsonl.path,
                   (*sink)->repaired_bytes());
    }
    impl->sinks.push_back(std::move(sink).value());
  }
  std::unique_ptr<Runner> runner(new Runner(std::move(impl)));
  for (const auto& camera : runner->impl_->cameras) runner->stats_.cameras.push_back(CameraStats{camera.config.id});
  return runner;
}

void Runner::request_stop() {
  impl_->stop.store(true);
  for (auto& camera : impl_->cameras) camera.source->interrupt();
}

Status Runner::run(std::optional<double> duration_s) {
  Impl& s = *impl_;
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = process_cpu_seconds();
  auto deadline = std::chrono::steady_clock::time_point::max();
  if (duration_s) {
    deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(*duration_s));
  }
  auto next_status = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(s.config.status_interval_s));
  std::uint64_t frames_at_last_status = 0;
  double cpu_at_last_status = cpu_start;
  auto last_status = start;

  auto finish = [&](Status status) {
    stats_.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    stats_.cpu_seconds = process_cpu_seconds() - cpu_start;
    for (const Model& model : s.models) {
      stats_.model_calls += model.detector->calls();
      stats_.model_items += model.detector->items();
    }
    for (auto& sink : s.sinks) {
      Status flushed = sink->flush();
      if (status.ok() && !flushed.ok()) status = flushed;
    }
    return status;
  };

  for (;;) {
    if (s.stop.load() || std::chrono::steady_clock::now() >= deadline) return finish({});
    // One round: the next frame of every camera that has not ended.
    bool any_active = false;
    for (Model& model : s.models) {
      model.frames.clear();
      model.cameras.clear();
    }
    for (std::size_t i = 0; i < s.cameras.size(); ++i) {
      Camera& camera = s.cameras[i];
      if (camera.finished) continue;
      auto frame = camera.source->read();
      if (!frame.ok()) {
        if (frame.error().code == ErrorCode::cancelled && s.stop.load()) return finish({});
        return finish(with_context(frame.error(), "camera " + camera.config.id));
      }
      if (!*frame) {
        camera.finished = true;
        stats_.cameras[i].finished = true;
        continue;
      }
      any_active = true;
      ++stats_.cameras[i].frames;
      const int every = std::max(1, camera.config.detect.every);
      if ((*frame)->seq % static_cast<std::uint64_t>(every) != 0) continue;
      Model& model = s.models[camera.model_index];
      model.frames.push_back(std::move(frame).value());
      model.cameras.push_back(i);
    }
    if (!any_active) return finish({});

    for (Model& model : s.models) {
      if (model.frames.empty()) continue;
      model.images.clear();
      for (const FrameRef& f : model.frames) model.images.push_back(&f->image);
      if (Status status = model.detector->detect(model.images, model.results); !status.ok()) {
        return finish(with_context(status.error(), "model " + model.name));
      }
      for (std::size_t k = 0; k < model.frames.size(); ++k) {
        CameraStats& camera_stats = stats_.cameras[model.cameras[k]];
        const Detections& detections = model.results[k];
        ++camera_stats.frames_detected;
        camera_stats.detections += detections.size();
        if (!detections.empty()) ++camera_stats.frames_with_faces;
        const FrameResult result{model.frames[k].get(), model.name, &detections};
        for (auto& sink : s.sinks) {
          if (Status status = sink->write(result); !status.ok()) return finish(status);
        }
      }
      model.frames.clear();  // frames go back to their pools now
    }

    const auto now = std::chrono::steady_clock::now();
    if (s.config.status_interval_s > 0 && now >= next_status) {
      const double dt = std::chrono::duration<double>(now - last_status).count();
      const double cpu = process_cpu_seconds();
      const std::uint64_t frames = stats_.frames();
      spdlog::info("status: {} frames, {:.1f} fps, {} faces, cpu {:.2f} cores, {} threads", frames,
                   static_cast<double>(frames - frames_at_last_status) / dt, stats_.detections(),
                   (cpu - cpu_at_last_status) / dt, process_thread_count());
      frames_at_last_status = frames;
      cpu_at_last_status = cpu;
      last_status = now;
      next_status = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(s.config.status_interval_s));
    }
  }
}

}  // namespace vigil
