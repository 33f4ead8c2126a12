// The detector stage: a batch of cameras' newest frames through the detector, then tracking
// (or, for frames not due for detection, predicted tracks only), track events on the bus,
// and results to the sinks or on to the face stage. A model failure stays with its frames.
#include <spdlog/spdlog.h>

#include "vigil/pipeline/engine_impl.h"

namespace vigil {

using namespace engine_internal;

// Frame steps since the camera's previous result (frames replaced or skipped count); 1 after
// a reconnect restarts the source's numbering.
int Engine::Impl::frame_steps(Camera& cam, const Frame& frame) {
  int steps = 1;
  if (cam.has_last_seq && frame.seq > cam.last_seq) {
    steps = static_cast<int>(std::min<std::uint64_t>(frame.seq - cam.last_seq, 1000));
  }
  cam.last_seq = frame.seq;
  cam.has_last_seq = true;
  return steps;
}

// A frame of a tracked camera that skips the detector: its tracks are predicted. Token held.
void Engine::Impl::track_only(Camera& cam, FrameRef frame) {
  FrameResult& r = cam.result;
  const int steps = frame_steps(cam, *frame);
  cam.tracker->predict(steps, r.tracks);
  cam.predicted.fetch_add(1, std::memory_order_relaxed);
  if (cam.config.track.emit != TrackEmit::every_frame) return;
  r.frame = std::move(frame);
  r.model = models[cam.model]->name;
  r.detected = false;
  r.detections.clear();
  r.tracked = true;
  r.track_events.clear();
  r.faces.clear();
  if (cam.identities) label_tracks(r, *cam.identities);
  r.inference_started = SteadyTime{};
  deliver(cam, r);
  r.frame.reset();  // back to its pool now, not when the next result comes
}

// Track changes go on the bus (they are rare: per track, not per frame).
void Engine::Impl::publish_track_events(const Camera& cam, const FrameResult& r) {
  for (const TrackEvent& e : r.track_events) {
    Event event;
    switch (e.kind) {
      case TrackEventKind::started: event.kind = EventKind::track_started; break;
      case TrackEventKind::lost: event.kind = EventKind::track_lost; break;
      case TrackEventKind::refound: event.kind = EventKind::track_refound; break;
      case TrackEventKind::removed: event.kind = EventKind::track_removed; break;
    }
    event.at = r.frame->captured_at;
    event.camera = cam.config.id;
    event.track_id = e.track_id;
    event.frame_seq = r.frame->seq;
    event.bbox = e.bbox;
    bus.publish(std::move(event));
  }
}

namespace {

Status safe_detect(Detector& detector, std::span<const Image* const> images, std::vector<Detections>& results) {
  return guarded_call([&] { return detector.detect(images, results); });
}

}  // namespace

// The detector stage of one model: one detector instance and one set of buffers per worker.
class Engine::Impl::DetectorStage final : public ModelStage {
 public:
  DetectorStage(Engine::Impl& engine, Model& model, std::vector<std::unique_ptr<Detector>> detectors)
      : engine_(engine), model_(model), detectors_(std::move(detectors)), scratch_(detectors_.size()) {}

  void run(int worker, std::vector<CameraRef>& batch) override;
  void abandon(int worker) override;
  // A live camera's newest frame replaces the one not yet taken (capture never waits for
  // inference); a file camera decodes at most kFileQueueCapacity frames ahead and then
  // waits (every frame is processed, in order). Batches across cameras; adds detections.
  StageSpec spec(bool live_camera) const override {
    StageSpec spec;
    spec.kind = StageKind::detect;
    spec.name = model_.name;
    spec.input = live_camera ? EdgeSpec{EdgeOverflow::newest_wins, 1} : EdgeSpec{EdgeOverflow::queue, kFileQueueCapacity};
    spec.batch = batch_policy_of(model_.config);
    spec.adds = kDetections;
    return spec;
  }

 private:
  static constexpr std::size_t kFileQueueCapacity = 4;  // frames a file camera decodes ahead
  struct Scratch {
    std::vector<FrameRef> frames;
    std::vector<CameraRef> owners;
    std::vector<const Image*> images;
    std::vector<Detections> results, one;
    std::vector<char> handed;  // owners[i] went on to its face stage (it holds its token there)
  };
  void isolate_failure(Detector& detector, const Error& batch_error, Scratch& s);
  SteadyTime take_newest_frames(std::vector<CameraRef>& batch, Scratch& s);
  bool track_and_deliver(Camera& cam, FrameRef frame, const Detections& detections, SteadyTime start);

  Engine::Impl& engine_;
  Model& model_;
  std::vector<std::unique_ptr<Detector>> detectors_;  // [worker]
  std::vector<Scratch> scratch_;                      // [worker]
};

void Engine::Impl::DetectorStage::run(int worker, std::vector<CameraRef>& batch) {
  Engine::Impl& e = engine_;
  Scratch& s = scratch_[static_cast<std::size_t>(worker)];
  s.frames.clear();
  s.owners.clear();
  s.images.clear();
  s.handed.clear();
  if (!e.governor->admit()) {  // stopping
    for (auto& cam : batch) e.finish(cam, model_);
    return;
  }
  const SteadyTime start = take_newest_frames(batch, s);
  if (!s.frames.empty()) {
    Detector& detector = *detectors_[static_cast<std::size_t>(worker)];
    Status status = safe_detect(detector, s.images, s.results);
    if (!status.ok()) isolate_failure(detector, status.error(), s);
    model_.latency_ms->record(ms_between(start, SteadyClock::now()));
    model_.batches.fetch_add(1, std::memory_order_relaxed);
    model_.items.fetch_add(s.frames.size(), std::memory_order_relaxed);
    model_.batch_sizes[std::min(s.frames.size(), model_.batch_sizes.size() - 1)].fetch_add(1, std::memory_order_relaxed);
    for (std::size_t i = 0; i < s.frames.size(); ++i) {
      if (s.frames[i]) s.handed[i] = track_and_deliver(*s.owners[i], std::move(s.frames[i]), s.results[i], start) ? 1 : 0;
    }
  }
  s.frames.clear();  // back to the pools before the cameras become ready again
  for (std::size_t i = 0; i < s.owners.size(); ++i) {
    if (s.handed[i]) {
      e.to_face_stage(s.owners[i], model_);
    } else {
      e.finish(s.owners[i], model_);
    }
  }
}

// Takes each camera's newest frame now, at the last moment; returns when.
SteadyTime Engine::Impl::DetectorStage::take_newest_frames(std::vector<CameraRef>& batch, Scratch& s) {
  Engine::Impl& e = engine_;
  const SteadyTime start = SteadyClock::now();
  for (auto& owner : batch) {
    Camera& cam = *owner;
    std::optional<PendingFrame> item = cam.input.take();
    if (!item || !item->frame) {
      e.finish(owner, model_);
      continue;
    }
    FrameRef& frame = item->frame;
    if (cam.live) cam.cadence.advance_live(*frame);
    const double age = ms_between(frame->captured_steady, start);
    cam.age_ms->record(age);
    e.age_ms->record(age);
    s.images.push_back(&frame->image);  // the pooled Frame does not move
    s.frames.push_back(std::move(frame));
    s.owners.push_back(owner);
    s.handed.push_back(0);
  }
  return start;
}

// A detected frame through the camera's tracker into its result (this worker holds the
// camera's token); delivered, unless its faces are to be embedded first (returns true: the
// result waits in the face stage).
bool Engine::Impl::DetectorStage::track_and_deliver(Camera& cam, FrameRef frame, const Detections& detections,
                                                     SteadyTime start) {
  Engine::Impl& e = engine_;
  FrameResult& r = cam.result;
  const int steps = Engine::Impl::frame_steps(cam, *frame);
  r.frame = std::move(frame);
  r.model = model_.name;
  r.detected = true;
  r.detections.assign(detections.begin(), detections.end());
  r.tracked = cam.tracker != nullptr;
  r.track_events.clear();
  r.tracks.clear();
  r.faces.clear();
  r.inference_started = start;
  if (cam.tracker) {
    cam.tracker->update(r.detections, steps, r.tracks, r.track_events);
    cam.tracks_started.store(cam.tracker->tracks_started(), std::memory_order_relaxed);
    e.publish_track_events(cam, r);
  }
  cam.inferred.fetch_add(1, std::memory_order_relaxed);
  if (cam.faces_model) {
    cam.faces_detected.fetch_add(r.detections.size(), std::memory_order_relaxed);
    select_faces(r, cam.identities.get(), cam.face_jobs);
    if (!cam.face_jobs.empty()) return true;  // the result waits for its faces (the token stays held)
    if (cam.identities) label_tracks(r, *cam.identities);
  }
  e.deliver(cam, r);
  e.end_to_end_ms->record(ms_between(r.frame->captured_steady, SteadyClock::now()));
  r.frame.reset();
  return false;
}

// A sink or hook threw in the middle of run(): give back the tokens this worker still holds.
void Engine::Impl::DetectorStage::abandon(int worker) {
  Scratch& s = scratch_[static_cast<std::size_t>(worker)];
  s.frames.clear();
  for (std::size_t i = 0; i < s.owners.size(); ++i) {
    if (i < s.handed.size() && s.handed[i]) continue;
    s.owners[i]->result.frame.reset();
    engine_.finish(s.owners[i], model_);
  }
  s.owners.clear();
}

// The model failed on a batch: run its frames one at a time so that only the frames it
// fails on are lost (their slots in `frames` are emptied and counted against their camera);
// the other cameras of the batch keep their results.
void Engine::Impl::DetectorStage::isolate_failure(Detector& detector, const Error& batch_error, Scratch& s) {
  s.results.resize(s.frames.size());
  for (std::size_t i = 0; i < s.frames.size(); ++i) {
    Status status = s.frames.size() == 1 ? Status(batch_error) : safe_detect(detector, {&s.images[i], 1}, s.one);
    if (status.ok() && s.one.size() == 1) {
      s.results[i] = std::move(s.one[0]);
      continue;
    }
    if (status.ok()) status = Error{ErrorCode::internal, "the model returned no result"};
    Engine::Impl::record_stage_error(*s.owners[i], model_, status.error(), s.frames[i]->seq);
    s.frames[i].reset();
  }
}

std::unique_ptr<ModelStage> Engine::Impl::make_detector_stage(Model& model, std::vector<std::unique_ptr<Detector>> detectors) {
  return std::make_unique<DetectorStage>(*this, model, std::move(detectors));
}

// Counts a model's failure on one of the camera's frames and logs it at most once a
// second per camera, so a model failing on every frame cannot flood the log.
void Engine::Impl::record_stage_error(Camera& cam, const Model& model, const Error& error, std::uint64_t seq) {
  const std::uint64_t count = cam.stage_errors.fetch_add(1, std::memory_order_relaxed) + 1;
  cam.record_error(error);
  const std::int64_t now_ns = to_ns(SteadyClock::now());
  std::int64_t last = cam.last_error_log_ns.load(std::memory_order_relaxed);
  if (now_ns - last >= 1'000'000'000 && cam.last_error_log_ns.compare_exchange_strong(last, now_ns)) {
    spdlog::warn("camera {}: model {} failed on frame {}: {} ({} such errors so far)", cam.config.id, model.name, seq,
                 error.message, count);
  }
}

}  // namespace vigil
