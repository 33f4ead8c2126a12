// The engine's metrics: per camera and per model series in the registry (atomics of the hot
// path read at scrape time) and the EngineStatus snapshot.
#include <spdlog/spdlog.h>

#include "vigil/pipeline/engine_impl.h"

namespace vigil {

using namespace engine_internal;

void Engine::Impl::register_camera_metrics(const std::shared_ptr<Camera>& cam) {
  const MetricLabels labels = {{"camera", cam->config.id}};
  cam->age_ms = metrics.histogram("vigil_frame_age_seconds", "Age of a frame when its inference started, seconds.",
                                  labels, 0.01, 0.001);
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
          [c] { return double(c->input.replaced()); });
  counter("vigil_decode_errors_total", "Corrupt frames and read errors.", [c] { return double(c->decode_errors.load()); });
  counter("vigil_reconnects_total", "Times the camera reconnected.", [c] { return double(c->reconnects.load()); });
  counter("vigil_stage_errors_total", "Frames a model failed on (the frame is dropped, the camera goes on).",
          [c] { return double(c->stage_errors.load()); });
  counter("vigil_frames_late_total", "Live frames dropped as late by a remote model (a worker's max_age_ms, or no reply in time).",
          [c] { return double(c->late.load()); });
  if (cam->config.lease_until) {
    counter("vigil_frames_fenced_total", "Results not delivered because the camera's lease had run out.",
            [c] { return double(c->fenced.load()); });
  }
  counter("vigil_tracks_started_total", "Tracks confirmed on the camera.", [c] { return double(c->tracks_started.load()); });
  if (cam->counts_people) {
    metrics.callback("vigil_people", "People on the camera now: person tracks confirmed and not yet removed.", MetricType::gauge,
                     labels, [c] { return double(c->people.load()); });
  }
  if (cam->shots) {
    counter("vigil_shot_cuts_total", "Shot cuts seen (each ended every track).", [c] { return double(c->shot_cuts.load()); });
  }
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
  model.latency_ms = metrics.histogram("vigil_model_latency_seconds",
                                       "Model call per batch (pre-processing, inference, post-processing), seconds.",
                                       labels, 0.01, 0.001);
  Model* m = &model;
  metrics.callback("vigil_model_batches_total", "Batches the model ran.", MetricType::counter, labels,
                   [m] { return double(m->batches.load()); });
  metrics.callback("vigil_model_items_total", "Items (frames or crops) the model ran on.", MetricType::counter, labels,
                   [m] { return double(m->items.load()); });
}

void Engine::reset_histograms() {
  Impl& s = *impl_;
  s.end_to_end_ms->reset();
  s.age_ms->reset();
  for (auto& m : s.models) m->latency_ms->reset();
  MutexLock lock(s.mu);
  for (auto& c : s.cameras) c->age_ms->reset();
}

// What status() reports comes from one snapshot of the registry (the same numbers the status
// line, the Prometheus text and the benchmarks read); only what is not a number (state,
// history, last error) and the run time come from the camera itself.
std::optional<CameraLatest> Engine::latest(const std::string& camera_id) const {
  const Impl& s = *impl_;
  std::shared_ptr<Camera> cam;
  {
    MutexLock lock(s.mu);
    for (const auto& c : s.cameras) {
      if (c->config.id == camera_id) {
        cam = c;
        break;
      }
    }
  }
  if (!cam) return std::nullopt;
  CameraLatest out;
  out.state = cam->state();
  MutexLock lock(cam->latest_mu);
  if (cam->latest.frame) out.result = std::make_shared<const FrameResult>(cam->latest);
  return out;
}

namespace {

// A camera's series of the registry into its status.
void read_camera_sample(const MetricSample& m, CameraStatus& cs) {
  const auto n = static_cast<std::uint64_t>(m.value);
  static const std::pair<const char*, std::uint64_t CameraStatus::*> kCounters[] = {
      {"vigil_frames_decoded_total", &CameraStatus::frames_decoded},
      {"vigil_frames_inferred_total", &CameraStatus::frames_inferred},
      {"vigil_frames_replaced_total", &CameraStatus::frames_replaced},
      {"vigil_frames_skipped_total", &CameraStatus::frames_skipped},
      {"vigil_frames_predicted_total", &CameraStatus::frames_predicted},
      {"vigil_stage_errors_total", &CameraStatus::stage_errors},
      {"vigil_frames_late_total", &CameraStatus::frames_late},
      {"vigil_frames_fenced_total", &CameraStatus::frames_fenced},
      {"vigil_tracks_started_total", &CameraStatus::tracks_started},
      {"vigil_shot_cuts_total", &CameraStatus::shot_cuts},
      {"vigil_faces_detected_total", &CameraStatus::faces_detected},
      {"vigil_faces_embedded_total", &CameraStatus::faces_embedded},
      {"vigil_identities_changed_total", &CameraStatus::identities_changed},
      {"vigil_decode_errors_total", &CameraStatus::decode_errors},
      {"vigil_reconnects_total", &CameraStatus::reconnects}};
  for (const auto& [name, field] : kCounters) {
    if (m.name == name) {
      cs.*field = n;
      return;
    }
  }
  if (m.name == "vigil_people") {
    cs.counts_people = true;
    cs.people = n;
    return;
  }
  if (m.name == "vigil_frame_age_seconds") cs.age_p50_ms = m.p50 * 1000, cs.age_p99_ms = m.p99 * 1000;
}

}  // namespace

EngineStatus Engine::status() const {
  const Impl& s = *impl_;
  EngineStatus out;
  out.workers = s.workers_count;
  out.inference_threads = s.inference_threads;
  out.timer_threads = s.timers->thread_count();
  std::vector<std::shared_ptr<Camera>> cameras;
  {
    MutexLock lock(s.mu);
    cameras = s.cameras;
  }
  const std::vector<MetricSample> samples = s.metrics.snapshot();
  std::map<std::string, std::size_t> camera_index, model_index;
  for (const auto& c : cameras) {
    CameraStatus cs;
    cs.id = c->config.id;
    cs.state = c->state();
    cs.live = c->live;
    cs.source_type = c->config.source.type;
    cs.source_url = c->config.source.type == SourceType::synthetic ? c->config.source.path : c->config.source.url;
    cs.frame_count = c->frame_count;
    {
      MutexLock lock(c->info_mu);
      cs.last_error = c->last_error;
      for (const auto& entry : c->machine->history()) cs.history.push_back(entry.state);
    }
    camera_index.emplace(cs.id, out.cameras.size());
    out.cameras.push_back(std::move(cs));
  }
  for (const auto& m : s.models) {
    ModelStatus ms;
    ms.name = m->name;
    for (const auto& b : m->batch_sizes) ms.batch_sizes.push_back(b.load());
    model_index.emplace(ms.name, out.models.size());
    out.models.push_back(std::move(ms));
  }
  auto label = [](const MetricSample& m, const char* key) -> const std::string* {
    for (const auto& [k, v] : m.labels) {
      if (k == key) return &v;
    }
    return nullptr;
  };
  for (const MetricSample& m : samples) {
    const auto n = static_cast<std::uint64_t>(m.value);
    if (m.labels.empty()) {
      if (m.name == "vigil_frame_age_all_cameras_seconds") out.age_p50_ms = m.p50 * 1000, out.age_p99_ms = m.p99 * 1000;
      if (m.name == "vigil_end_to_end_seconds") out.end_to_end_p50_ms = m.p50 * 1000, out.end_to_end_p99_ms = m.p99 * 1000;
    } else if (const std::string* model = label(m, "model")) {
      const auto it = model_index.find(*model);
      if (it == model_index.end()) continue;
      ModelStatus& ms = out.models[it->second];
      if (m.name == "vigil_model_batches_total") ms.batches = n;
      if (m.name == "vigil_model_items_total") ms.items = n;
      if (m.name == "vigil_model_latency_seconds") ms.latency_p50_ms = m.p50 * 1000, ms.latency_p99_ms = m.p99 * 1000;
    } else if (const std::string* camera = label(m, "camera")) {
      const auto it = camera_index.find(*camera);
      if (it == camera_index.end()) continue;
      CameraStatus& cs = out.cameras[it->second];
      read_camera_sample(m, cs);
    }
  }
  for (std::size_t i = 0; i < cameras.size(); ++i) {
    CameraStatus& cs = out.cameras[i];
    const std::int64_t started = cameras[i]->started_ns.load();
    if (started == 0) continue;
    const std::int64_t ended = cameras[i]->ended_ns.load();
    const double seconds = static_cast<double>((ended != 0 ? ended : to_ns(SteadyClock::now())) - started) / 1e9;
    if (seconds > 0) {
      cs.decode_fps = static_cast<double>(cs.frames_decoded) / seconds;
      cs.infer_fps = static_cast<double>(cs.frames_inferred) / seconds;
    }
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
