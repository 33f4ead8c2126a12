#include "vigil/pipeline/engine.h"

#include <spdlog/spdlog.h>

#include "vigil/pipeline/engine_impl.h"
#include "vigil/vision/face_align.h"

namespace vigil {

using namespace engine_internal;


Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  bool running = false;
  {
    MutexLock lock(impl_->mu);
    running = impl_->started && !impl_->stopped;
  }
  if (running) {
    request_stop();
    (void)run(0.0);
  }
}

Result<std::unique_ptr<Engine>> Engine::create(const EngineConfig& config, EngineHooks hooks) {
  prepare_image_codecs();  // before any of the engine's threads: thumbnails are encoded on the workers
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->hooks = std::move(hooks);
  // One budget sizes every pool. Two single-threaded workers beat one two-threaded worker
  // on small convolutional models (no intra-op synchronisation, and pre-processing of one
  // batch overlaps inference of the other), so workers follow cores.
  const double cores = config.cpu_budget.cores > 0 ? config.cpu_budget.cores : hardware_cores();
  impl->workers_count = config.workers > 0 ? config.workers : std::max(1, static_cast<int>(cores));
  impl->inference_threads = config.inference_threads > 0
                                ? config.inference_threads
                                : std::max(1, static_cast<int>(cores) / impl->workers_count);
  set_inference_threads(impl->inference_threads);
  impl->governor = std::make_unique<CpuGovernor>(cores, config.cpu_budget.enforce);
  impl->timers = std::make_unique<TimerService>(std::clamp(static_cast<int>(cores) / 2, 1, 4));

  impl->clusters = std::make_unique<AnonymousClusters>(config.identity.anon_threshold);
  impl->end_to_end_ms = impl->metrics.histogram("vigil_end_to_end_seconds", "Capture to result delivered, seconds.", {},
                                                0.01, 0.001);
  impl->age_ms = impl->metrics.histogram("vigil_frame_age_all_cameras_seconds",
                                         "Age of a frame when its inference started, all cameras, seconds.", {}, 0.01, 0.001);
  if (!config.gallery.empty()) VIGIL_RETURN_IF_ERROR(check_gallery_dir(config.gallery));  // before models load
  VIGIL_RETURN_IF_ERROR(impl->build_models());
  VIGIL_RETURN_IF_ERROR(impl->build_gallery());
  VIGIL_RETURN_IF_ERROR(impl->open_sinks());
  std::unique_ptr<Engine> engine(new Engine(std::move(impl)));
  for (const auto& camera : config.cameras) VIGIL_RETURN_IF_ERROR(engine->add_camera(camera));
  return engine;
}

// The camera's state machine, which publishes every change on the bus (with the camera's
// last error when it leaves `live`).
std::unique_ptr<CameraStateMachine> Engine::Impl::make_state_machine(Camera& cam) {
  return std::make_unique<CameraStateMachine>(SteadyClock::now(), [this, raw = &cam](CameraState from, CameraState to,
                                                                                     SteadyTime) {
    Event event;
    event.kind = EventKind::camera_state;
    event.camera = raw->config.id;
    event.from = from;
    event.to = to;
    {
      MutexLock lock(raw->info_mu);
      if (to != CameraState::live) event.detail = raw->last_error;
    }
    bus.publish(std::move(event));
  });
}

// The camera's face stage (faces_model): live identities per track, or the per-track best faces.
Status Engine::Impl::set_up_faces(Camera& cam) {
  const CameraConfig& camera = cam.config;
  if (!camera.faces_model.empty()) {
    const auto faces = model_index.find(camera.faces_model);
    if (faces == model_index.end() || models[faces->second]->detector) {
      return Error{ErrorCode::invalid_argument, "camera " + camera.id + ": '" + camera.faces_model + "' is not a face_embedder"};
    }
    cam.faces_model = faces->second;
  }
  if (camera.best_faces) {
    if (!cam.faces_model || !cam.tracker) {
      return Error{ErrorCode::invalid_argument, "camera " + camera.id + ": best faces per track need a face_embedder and tracking"};
    }
    cam.best_faces = std::make_unique<BestFaces>(*camera.best_faces, models[*cam.faces_model]->first_embedder->face_template());
  } else if (cam.faces_model && cam.tracker) {
    cam.identities = std::make_unique<TrackIdentities>(config.identity);
  }
  return {};
}

Status Engine::add_camera(const CameraConfig& config) {
  Impl& s = *impl_;
  const auto found = s.model_index.find(config.detect.model);
  if (found == s.model_index.end()) {
    return Error{ErrorCode::invalid_argument, "camera " + config.id + ": unknown model '" + config.detect.model + "'"};
  }
  const Model& detector = *s.models[found->second];
  if (!detector.detector) {
    return Error{ErrorCode::invalid_argument, "camera " + config.id + ": '" + config.detect.model + "' is not a detector"};
  }
  if (std::string why = s.config.offline ? offline_refusal(config.source) : ""; !why.empty()) {
    return Error{ErrorCode::invalid_argument, "camera " + config.id + ": " + why};
  }
  if (config.source.stride < 1) return Error{ErrorCode::invalid_argument, "camera " + config.id + ": a stride of 1 or more"};
  // The camera's frames wait on the edge its detector stage declares for its kind.
  const bool live = config.source.live;
  auto cam = std::make_shared<Camera>(config, live, detector.stage->spec(live).input.value_or(EdgeSpec{}), s.mu);
  cam->model = found->second;
  if (config.track.enabled) cam->tracker = std::make_unique<ByteTracker>(config.track.tracker);
  cam->counts_people = cam->tracker && detector.config.role() == ModelRole::object_detector;
  VIGIL_RETURN_IF_ERROR(s.set_up_faces(*cam));
  cam->rng.seed(static_cast<std::uint32_t>(std::hash<std::string>{}(config.id)));
  const SourceConfig& sc = config.source;
  cam->faults = std::make_unique<FaultSchedule>(sc.faults);
  cam->machine = s.make_state_machine(*cam);
  if (cam->tracker && config.track.shot_cut > 0) cam->shots = std::make_unique<ShotCutDetector>(config.track.shot_cut);
  if (sc.type == SourceType::synthetic && sc.live) {
    auto synthetic = SyntheticSource::open(sc, config.id);
    if (!synthetic.ok()) return with_context(synthetic.error(), "camera " + config.id);
    cam->synthetic = std::move(synthetic).value();
    cam->interval_s = 1.0 / sc.fps;
  } else if (!(sc.type == SourceType::stream && sc.reconnect)) {
    // Files, unpaced synthetic cameras and streams without reconnect open now: bad input
    // fails here, at start-up, with the camera's name.
    auto source = open_source(sc, config.id);
    if (!source.ok()) return with_context(source.error(), "camera " + config.id);
    spdlog::info("camera {}: {}", config.id, (*source)->info().description);
    cam->interval_s = (*source)->info().fps > 0 ? 1.0 / (*source)->info().fps : 0;
    cam->frame_count = (*source)->info().frame_count;
    MutexLock lock(cam->source_mu);  // no other thread knows the camera yet; the analysis cannot tell
    cam->source = std::move(source).value();
  } else {
    cam->interval_s = sc.fps > 0 ? 1.0 / sc.fps : 0;
  }
  cam->cadence.configure(config.detect, cam->interval_s);
  bool start_now = false;
  {
    MutexLock lock(s.mu);
    for (const auto& other : s.cameras) {
      if (other->config.id == config.id) {
        return Error{ErrorCode::already_exists, "camera " + config.id + ": a camera with this id already runs"};
      }
    }
    if (!cam->live) {  // starts level with the slowest queued camera of its model
      cam->turn.get(s.mu).fair_offset = s.slowest_queued_position(cam->model);
      s.models[cam->model]->count_queued_camera(+1, s.mu);
    }
    s.cameras.push_back(cam);
    ++s.models[cam->model]->queue.get(s.mu).cameras;
    if (cam->faces_model) ++s.models[*cam->faces_model]->queue.get(s.mu).cameras;
    start_now = s.started && !s.stopped;
  }
  s.register_camera_metrics(cam);  // before capture starts: the hot path records into it
  if (auto chain = pipeline(config.id); chain.ok()) spdlog::info("camera {}: {}", config.id, describe(*chain));
  if (start_now) s.start_capture(cam);
  return {};
}

Status Engine::remove_camera(const std::string& id) {
  Impl& s = *impl_;
  std::shared_ptr<Camera> cam;
  {
    MutexLock lock(s.mu);
    auto it = std::find_if(s.cameras.begin(), s.cameras.end(), [&](const auto& c) { return c->config.id == id; });
    if (it == s.cameras.end()) return Error{ErrorCode::not_found, "no camera '" + id + "'"};
    cam = *it;
    s.cameras.erase(it);
    cam->turn.get(s.mu).removed = true;
    Model::Queue& detector = s.models[cam->model]->queue.get(s.mu);
    --detector.cameras;
    if (!cam->live) s.models[cam->model]->count_queued_camera(-1, s.mu);
    detector.edge.remove_if([&](const CameraRef& c) { return c == cam; });
    if (cam->faces_model) {
      // A result waiting for its faces is dropped with the camera (the token came with it).
      Model::Queue& faces = s.models[*cam->faces_model]->queue.get(s.mu);
      --faces.cameras;
      std::erase_if(faces.face_batches, [&](const FaceWork& w) { return w.camera == cam; });  // kept faces go with it
      if (faces.edge.remove_if([&](const CameraRef& c) { return c == cam; }) > 0) {
        cam->turn.get(s.mu).inflight = false;
        cam->result.frame.reset();
        cam->detected_backlog.clear();
        cam->pending = false;
      }
    }
  }
  s.stop_capture(*cam);
  {
    // In-flight work finishes before the decoder goes.
    cam->removed_wait = true;
    MutexLock lock(s.mu);
    while (cam->turn.get(s.mu).inflight) s.idle_cv.wait(s.mu);
  }
  cam->input.clear();
  {
    MutexLock lock(cam->source_mu);
    cam->source.reset();  // releases the decoder
  }
  cam->synthetic.reset();
  s.metrics.remove_matching("camera", id);
  cam.reset();  // the last reference, unless a worker's batch vector still holds one
  release_free_memory();
  s.idle_cv.notify_all();
  return {};
}

Result<CameraStatus> Engine::finish_camera(const std::string& id) {
  Impl& s = *impl_;
  std::shared_ptr<Camera> cam;
  {
    MutexLock lock(s.mu);
    const auto it = std::find_if(s.cameras.begin(), s.cameras.end(), [&](const auto& c) { return c->config.id == id; });
    if (it == s.cameras.end()) return Error{ErrorCode::not_found, "no camera '" + id + "'"};
    cam = *it;
    while (!s.stop_requested && !(cam->ended.load() && !cam->pending.load() && !s.has_frame(*cam) && cam->faces_finished())) {
      s.idle_cv.wait(s.mu);
    }
    if (s.stop_requested) return s.first_error ? *s.first_error : Error{ErrorCode::cancelled, "camera " + id + ": stopped"};
  }
  const EngineStatus status = this->status();
  const auto found = std::find_if(status.cameras.begin(), status.cameras.end(), [&](const CameraStatus& c) { return c.id == id; });
  if (found == status.cameras.end()) return Error{ErrorCode::not_found, "no camera '" + id + "'"};  // removed meanwhile
  std::optional<Error> fatal;
  {
    MutexLock info(cam->info_mu);
    fatal = cam->fatal;
  }
  VIGIL_RETURN_IF_ERROR(remove_camera(id));
  if (fatal) return with_context(*fatal, "camera " + id);
  return *found;
}

bool Engine::camera_finished(const std::string& id) const {
  Impl& s = *impl_;
  MutexLock lock(s.mu);
  // A stopping engine ends every camera: that is not a source read to its end.
  if (s.stop_requested || s.stopped) return false;
  const auto it = std::find_if(s.cameras.begin(), s.cameras.end(), [&](const auto& c) { return c->config.id == id; });
  if (it == s.cameras.end()) return false;
  Camera& cam = **it;
  return cam.ended.load() && !cam.pending.load() && !s.has_frame(cam) && cam.faces_finished();
}

void Engine::start() {
  Impl& s = *impl_;
  std::vector<std::shared_ptr<Camera>> cameras;
  {
    MutexLock lock(s.mu);
    if (s.started) return;
    s.started = true;
    cameras = s.cameras;
  }
  {
    MutexLock lock(s.mu);
    s.idle_workers = static_cast<std::size_t>(s.workers_count);
  }
  for (int w = 0; w < s.workers_count; ++w) s.workers.emplace_back([&s, w] { s.worker_loop(w); });
  for (auto& cam : cameras) s.start_capture(cam);
}

void Engine::request_stop() {
  {
    MutexLock lock(impl_->mu);
    impl_->stop_requested = true;
  }
  impl_->idle_cv.notify_all();
}

Status Engine::run(std::optional<double> duration_s) {
  Impl& s = *impl_;
  start();
  const auto begin = SteadyClock::now();
  const auto deadline = duration_s ? begin + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(*duration_s))
                                   : SteadyTime::max();
  const auto status_every = std::chrono::duration_cast<SteadyClock::duration>(
      std::chrono::duration<double>(s.config.status_interval_s > 0 ? s.config.status_interval_s : 1e9));
  auto next_status = begin + status_every;
  Impl::StatusLine line{0, 0, process_cpu_seconds(), begin};

  MutexLock lock(s.mu);
  if (s.stopped) return s.first_error ? Status(*s.first_error) : Status{};
  for (;;) {
    if (s.stop_requested || SteadyClock::now() >= deadline) break;
    const bool all_done = std::all_of(s.cameras.begin(), s.cameras.end(), [&](const auto& c) {
      return c->ended.load() && !c->pending.load() && !s.has_frame(*c) && c->faces_finished();
    });
    if (all_done && !s.cameras.empty()) break;
    s.idle_cv.wait_until(s.mu, std::min(deadline, next_status));
    if (SteadyClock::now() >= next_status && s.config.status_interval_s > 0) {
      s.log_status(line);  // under mu (it reads the camera list)
      next_status = SteadyClock::now() + status_every;
    }
  }
  if (s.stopped) return s.first_error ? Status(*s.first_error) : Status{};
  s.stopped = true;
  std::vector<std::shared_ptr<Camera>> cameras = s.cameras;
  lock.unlock();

  // Shutdown: capture first (no new frames), then the workers finish the batches in flight.
  for (auto& cam : cameras) s.stop_capture(*cam);
  s.governor->stop();
  {
    MutexLock guard(s.mu);
    s.stopping = true;
  }
  s.work_cv.notify_all();
  for (auto& w : s.workers) w.join();
  s.workers.clear();
  for (auto& sink : s.sinks) {
    if (Status st = sink->close(); !st.ok()) s.fail(st.error());
  }
  s.bus.close();  // readers waiting for events wake up: nothing more will come
  lock.lock();
  if (!s.first_error) {
    for (const auto& cam : cameras) {
      MutexLock info(cam->info_mu);
      if (cam->fatal) {
        s.first_error = with_context(*cam->fatal, "camera " + cam->config.id);
        break;
      }
    }
  }
  return s.first_error ? Status(*s.first_error) : Status{};
}

EventBus& Engine::events() { return impl_->bus; }
const MetricsRegistry& Engine::metrics() const { return impl_->metrics; }

}  // namespace vigil
