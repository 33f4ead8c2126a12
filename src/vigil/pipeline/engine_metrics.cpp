// The engine's metrics: per camera and per model series in the registry (atomics of the hot
// path read at scrape time) and the EngineStatus snapshot.
#include <spdlog/spdlog.h>

#include "vigil/pipeline/engine_impl.h"

namespace vigil {

using namespace engine_internal;

void Engine::Impl::register_camera_metrics(const std::shared_ptr<Camera>& cam) {
  const MetricLabels labels = {{"camera", cam->config.id}};
  cam->age_ms = metrics.histogram("vigil_frame_age_ms", "Age of a frame when its inference started, milliseconds.",
                                  labels);
  auto counter = [&](const char* name, const char* help, std::function<double()> read) {
    metrics.callback(name, help, MetricType::counter, labels, std::move(read));
  };
  Camera* c = cam.get();  // the series are removed before the camera goes
  counter("vigil_frames_decoded_total", "Frames the camera's source decoded.", [c] { return double(c->decoded.load()); });
  counter("vigil_frames_inferred_total", "Frames the detector ran on.", [c] { return double(c->inferred.load()); });
  counter("vigil_frames_skipped_total", "Frames not due for detection (detect.every or detect.fps).",
          [c] { return double(c->skipped.load()); });
  counter("vigil_frames_predicted_total", "Frames between detections that got predicted tracks.",
          [c] { return double(c->predicted.load()); });
  counter("vigil_frames_replaced_total", "Frames replaced in a live camera's slot before the pipeline took them.",
          [c] { return double(c->slot.replaced()); });
  counter("vigil_decode_errors_total", "Corrupt frames and read errors.", [c] { return double(c->decode_errors.load()); });
  counter("vigil_reconnects_total", "Times the camera reconnected.", [c] { return double(c->reconnects.load()); });
  counter("vigil_stage_errors_total", "Frames a model failed on (the frame is dropped, the camera goes on).",
          [c] { return double(c->stage_errors.load()); });
  counter("vigil_tracks_started_total", "Tracks confirmed on the camera.", [c] { return double(c->tracks_started.load()); });
  if (cam->faces_model) {
    counter("vigil_faces_detected_total", "Faces the detector found on frames with a face stage.",
            [c] { return double(c->faces_detected.load()); });
    counter("vigil_faces_embedded_total", "Faces the embedder ran on.", [c] { return double(c->faces_embedded.load()); });
    counter("vigil_identities_changed_total", "Tracks that got an identity or changed it.",
            [c] { return double(c->identities_changed.load()); });
  }
  metrics.callback("vigil_camera_state", "The camera's state: 0 connecting, 1 live, 2 stalled, 3 failed, 4 stopped.",
                   MetricType::gauge, labels, [c] { return double(static_cast<int>(c->state())); });
}

void Engine::Impl::register_model_metrics(Model& model) {
  const MetricLabels labels = {{"model", model.name}};
  model.latency_ms = metrics.histogram("vigil_model_latency_ms",
                                       "Model call per batch (pre-processing, inference, post-processing), milliseconds.",
                                       labels);
  Model* m = &model;
  metrics.callback("vigil_model_batches_total", "Batches the model ran.", MetricType::counter, labels,
                   [m] { return double(m->batches.load()); });
  metrics.callback("vigil_model_items_total", "Items (frames or crops) the model ran on.", MetricType::counter, labels,
                   [m] { return double(m->items.load()); });
}

void Engine::reset_histograms() {
  Impl& s = *impl_;
  s.end_to_end_ms.reset();
  s.age_ms.reset();
  for (auto& m : s.models) m->latency_ms->reset();
  std::lock_guard lock(s.mu);
  for (auto& c : s.cameras) c->age_ms->reset();
}

EngineStatus Engine::status() const {
  const Impl& s = *impl_;
  EngineStatus out;
  out.workers = s.workers_count;
  out.inference_threads = s.inference_threads;
  out.timer_threads = s.timers->thread_count();
  out.age_p50_ms = s.age_ms.percentile(0.5);
  out.age_p99_ms = s.age_ms.percentile(0.99);
  out.end_to_end_p50_ms = s.end_to_end_ms.percentile(0.5);
  out.end_to_end_p99_ms = s.end_to_end_ms.percentile(0.99);
  std::vector<std::shared_ptr<Camera>> cameras;
  {
    std::lock_guard lock(s.mu);
    cameras = s.cameras;
  }
  for (const auto& c : cameras) {
    CameraStatus cs;
    cs.id = c->config.id;
    cs.state = c->state();
    cs.live = c->live;
    cs.frames_decoded = c->decoded.load();
    cs.frames_inferred = c->inferred.load();
    cs.frames_replaced = c->slot.replaced();
    cs.frames_skipped = c->skipped.load();
    cs.frames_predicted = c->predicted.load();
    cs.stage_errors = c->stage_errors.load();
    cs.tracks_started = c->tracks_started.load();
    cs.faces_detected = c->faces_detected.load();
    cs.faces_embedded = c->faces_embedded.load();
    cs.identities_changed = c->identities_changed.load();
    cs.decode_errors = c->decode_errors.load();
    cs.reconnects = c->reconnects.load();
    if (const std::int64_t started = c->started_ns.load(); started != 0) {
      const std::int64_t ended = c->ended_ns.load();
      const double seconds = static_cast<double>((ended != 0 ? ended : to_ns(SteadyClock::now())) - started) / 1e9;
      if (seconds > 0) {
        cs.decode_fps = static_cast<double>(cs.frames_decoded) / seconds;
        cs.infer_fps = static_cast<double>(cs.frames_inferred) / seconds;
      }
    }
    cs.age_p50_ms = c->age_ms->percentile(0.5);
    cs.age_p99_ms = c->age_ms->percentile(0.99);
    {
      std::lock_guard lock(c->info_mu);
      cs.last_error = c->last_error;
      for (const auto& entry : c->machine->history()) cs.history.push_back(entry.state);
    }
    out.cameras.push_back(std::move(cs));
  }
  for (const auto& m : s.models) {
    ModelStatus ms;
    ms.name = m->name;
    ms.batches = m->batches.load();
    ms.items = m->items.load();
    for (const auto& b : m->batch_sizes) ms.batch_sizes.push_back(b.load());
    ms.latency_p50_ms = m->latency_ms->percentile(0.5);
    ms.latency_p99_ms = m->latency_ms->percentile(0.99);
    out.models.push_back(std::move(ms));
  }
  return out;
}

// One status line: rates since the previous line from the registry's totals (a camera removed
// meanwhile can make them dip: floor 0). Caller holds mu.
void Engine::Impl::log_status(StatusLine& last) {
  const double decoded = metrics.total("vigil_frames_decoded_total");
  const double inferred = metrics.total("vigil_frames_inferred_total");
  std::size_t live = 0;
  double age_p99 = 0;
  for (const auto& c : cameras) {
    live += c->state() == CameraState::live;
    age_p99 = std::max(age_p99, c->age_ms->percentile(0.99));
  }
  const auto now = SteadyClock::now();
  const double dt = std::chrono::duration<double>(now - last.at).count();
  const double cpu = process_cpu_seconds();
  spdlog::info("status: {}/{} cameras live, decode {:.1f} fps, infer {:.1f} fps, frame age p99 {:.0f} ms, "
               "cpu {:.2f} cores, {} threads",
               live, cameras.size(), std::max(0.0, decoded - last.decoded) / dt,
               std::max(0.0, inferred - last.inferred) / dt, age_p99, (cpu - last.cpu) / dt, process_thread_count());
  last = StatusLine{decoded, inferred, cpu, now};
}

}  // namespace vigil
