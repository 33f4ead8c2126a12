// The detector stage: a batch of cameras' newest frames through the detector, then tracking
// (or, for frames not due for detection, predicted tracks only), track events on the bus,
// and results to the sinks or on to the face stage. A model failure stays with its frames.
#include <spdlog/spdlog.h>

#include "vigil/infer/call_context.h"
#include "vigil/pipeline/engine_impl.h"

namespace vigil {

using namespace engine_internal;

// Frame steps since the camera's previous result (frames replaced or skipped count, frames
// not sampled by the source's stride do not); 1 after a reconnect restarts the source's
// numbering.
int Engine::Impl::frame_steps(Camera& cam, const Frame& frame) {
  int steps = 1;
  if (cam.has_last_seq && frame.seq > cam.last_seq) {
    const auto stride = static_cast<std::uint64_t>(std::max(1, cam.config.source.stride));
    steps = static_cast<int>(std::clamp<std::uint64_t>((frame.seq - cam.last_seq) / stride, 1, 1000));
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
void Engine::Impl::publish_track_events(Camera& cam, const FrameResult& r) {
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
    const bool person = cam.counts_people && e.class_id == kPersonClass &&
                        (e.kind == TrackEventKind::started || e.kind == TrackEventKind::removed);
    Event people_event;  // a person's: after the track's own
    if (person) {
      people_event = event;
      people_event.kind = e.kind == TrackEventKind::started ? EventKind::person_entered : EventKind::person_left;
      cam.people_now = e.kind == TrackEventKind::started ? cam.people_now + 1 : std::max(1u, cam.people_now) - 1;
      people_event.people = cam.people_now;
      cam.people.store(cam.people_now, std::memory_order_relaxed);
    }
    bus.publish(std::move(event));
    if (person) bus.publish(std::move(people_event));
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
  // inference); a file camera decodes up to a batch ahead (at least 4 frames) and then
  // waits (every frame is processed, in order), and brings a run of its frames to each batch
  // (Model::run_frames). Batches across cameras; adds detections. Offline, each call is one
  // camera's run of max_batch frames due, taken when the whole run is there.
  StageSpec spec(bool live_camera) const override {
    StageSpec spec;
    spec.kind = StageKind::detect;
    spec.name = model_.name;
    const auto batch = static_cast<std::size_t>(std::max(1, model_.config.max_batch()));
    const auto ahead = std::max(kFileQueueCapacity, batch);
    spec.input = live_camera ? EdgeSpec{EdgeOverflow::newest_wins, 1} : EdgeSpec{EdgeOverflow::queue, ahead};
    spec.batch = batch_policy_of(model_.config, engine_.config.offline);
    if (engine_.config.offline) spec.run = batch;
    spec.adds = kDetections;
    return spec;
  }

 private:
  static constexpr std::size_t kFileQueueCapacity = 4;  // the least a file camera decodes ahead
  static constexpr std::size_t kNotDetected = static_cast<std::size_t>(-1);
  // A slice of the batch's images detected on whichever worker runs it (with that worker's
  // detector instance).
  struct Part final : SharedPart {
    const std::vector<std::unique_ptr<Detector>>* detectors = nullptr;
    std::span<const Image* const> images;
    std::vector<Detections> results;
    Status status;
    void run(int worker) override {
      status = safe_detect(*(*detectors)[static_cast<std::size_t>(worker)], images, results);
    }
  };
  struct Scratch {
    // The frames taken, in each camera's order: frames[i] belongs to owners[frame_owner[i]]
    // and is images[detection[i]] (kNotDetected: a frame not due, only tracked).
    std::vector<FrameRef> frames;
    std::vector<std::size_t> frame_owner, detection;
    std::vector<const Image*> images;
    std::vector<std::size_t> frame_of;  // [detection]: its index in frames
    std::vector<std::uint64_t> seqs;    // [detection]: its frame's seq (offline)
    std::vector<Detections> results, one;
    std::vector<CameraRef> owners;
    std::vector<Hold> state;  // [owner]
    std::vector<Part> parts;
    std::vector<SharedPart*> shared;
    std::vector<CallItem> calls;  // [detection]: what a remote model call sends with it
  };
  // s.calls for the batch's images (a remote backend sends them: cluster/remote_backend.h).
  void describe_calls(Scratch& s) const;
  Status detect(int worker, Scratch& s);
  // Offline: the run answered by EngineHooks::replay_detections (s.results filled), or not.
  bool replayed(Scratch& s);
  void isolate_failure(Detector& detector, const Error& batch_error, Scratch& s);
  SteadyTime take_frames(std::vector<CameraRef>& batch, Scratch& s);
  void add_frame(PendingFrame item, std::size_t owner, SteadyTime start, Scratch& s);
  void clear(Scratch& s) {
    s.frames.clear();
    s.frame_owner.clear();
    s.detection.clear();
    s.images.clear();
    s.frame_of.clear();
    s.seqs.clear();
    s.owners.clear();
    s.state.clear();
  }

  Engine::Impl& engine_;
  Model& model_;
  std::vector<std::unique_ptr<Detector>> detectors_;  // [worker]
  std::vector<Scratch> scratch_;                      // [worker]
};

void Engine::Impl::DetectorStage::run(int worker, std::vector<CameraRef>& batch) {
  Engine::Impl& e = engine_;
  Scratch& s = scratch_[static_cast<std::size_t>(worker)];
  clear(s);
  if (!e.governor->admit()) {  // stopping
    for (auto& cam : batch) e.finish(cam, model_);
    return;
  }
  const SteadyTime start = take_frames(batch, s);
  if (!s.images.empty() && !replayed(s)) {
    Status status = detect(worker, s);
    if (!status.ok()) isolate_failure(*detectors_[static_cast<std::size_t>(worker)], status.error(), s);
    if (status.ok() && e.config.offline && e.hooks.on_detected) e.hooks.on_detected(s.owners[0]->config.id, s.seqs, s.results);
    model_.count_call(s.images.size(), start);
  }
  for (std::size_t i = 0; i < s.frames.size(); ++i) {
    if (!s.frames[i]) continue;  // the model failed on it
    const std::size_t o = s.frame_owner[i], d = s.detection[i];
    Camera& cam = *s.owners[o];
    if (s.state[o] == Hold::to_faces) {  // behind a frame whose faces are being embedded
      cam.detected_backlog.push_back({std::move(s.frames[i]), d == kNotDetected ? Detections{} : std::move(s.results[d]),
                                      d == kNotDetected ? SteadyTime{} : start});
    } else if (d == kNotDetected) {
      e.track_only(cam, std::move(s.frames[i]));
    } else if (e.track_and_deliver(cam, model_, std::move(s.frames[i]), s.results[d], start)) {
      s.state[o] = Hold::to_faces;
    }
  }
  s.frames.clear();  // back to the pools before the cameras become ready again
  for (std::size_t o = 0; o < s.owners.size(); ++o) e.pass_on(s.owners[o], model_, s.state[o]);
}

// Takes the cameras' frames now, at the last moment: a live camera's newest; a queued
// camera's next run of up to Model::run_frames frames due for detection, with the frames not
// due between them (tracked only, in their place), and offline no more frames than its queue
// holds (so that the run is the same whenever it is taken). Returns when.
SteadyTime Engine::Impl::DetectorStage::take_frames(std::vector<CameraRef>& batch, Scratch& s) {
  Engine::Impl& e = engine_;
  const SteadyTime start = SteadyClock::now();
  const std::size_t run = model_.run_frames.load(std::memory_order_relaxed);
  for (auto& owner : batch) {
    Camera& cam = *owner;
    std::optional<PendingFrame> item = cam.input.take();
    if (!item || !item->frame) {
      e.finish(owner, model_);
      continue;
    }
    const std::size_t o = s.owners.size();
    s.owners.push_back(owner);
    s.state.push_back(Hold::held);
    if (cam.live) {  // its newest frame is detected, whatever it replaced
      cam.cadence.advance_live(*item->frame);
      item->due = true;
    }
    std::size_t due = item->due ? 1 : 0, taken = 1;
    const std::size_t most = e.config.offline ? cam.input.spec().capacity : static_cast<std::size_t>(-1);
    add_frame(std::move(*item), o, start, s);
    while (!cam.live && due < run && taken < most && (item = cam.input.take())) {
      if (!item->frame) break;
      due += item->due ? 1 : 0;
      ++taken;
      add_frame(std::move(*item), o, start, s);
    }
    if (e.config.offline) cam.queued_due.fetch_sub(due);
  }
  return start;
}

// The batch's images detected: in one call, or, when they are one file camera's run (which
// the scheduler cannot spread over the workers as it does several cameras' frames), in parts
// of at least kMinPart images, one per worker, run by the workers idle now or soon, the rest
// by this one.
Status Engine::Impl::DetectorStage::detect(int worker, Scratch& s) {
  constexpr std::size_t kMinPart = 2;
  const std::size_t n = s.images.size();
  const bool one_file_run = s.owners.size() == 1 && !s.owners.front()->live;
  const std::size_t count = one_file_run ? std::min(detectors_.size(), n / kMinPart) : 1;
  if (count <= 1) {
    describe_calls(s);
    CallContext::Scope scope(s.calls);
    return safe_detect(*detectors_[static_cast<std::size_t>(worker)], s.images, s.results);
  }
  s.parts.resize(detectors_.size());
  s.shared.clear();
  for (std::size_t p = 0, begin = 0; p < count; ++p) {
    const std::size_t end = begin + (n - begin) / (count - p);
    Part& part = s.parts[p];
    part.detectors = &detectors_;
    part.images = std::span<const Image* const>(s.images).subspan(begin, end - begin);
    s.shared.push_back(&part);
    begin = end;
  }
  engine_.run_shared(worker, s.shared);
  s.results.resize(n);
  std::size_t at = 0;
  for (std::size_t p = 0; p < count; ++p) {
    Part& part = s.parts[p];
    if (!part.status.ok()) return part.status;
    if (part.results.size() != part.images.size()) return Error{ErrorCode::internal, "the model returned too few results"};
    for (Detections& d : part.results) s.results[at++].swap(d);
  }
  return {};
}

void Engine::Impl::DetectorStage::describe_calls(Scratch& s) const {
  s.calls.resize(s.images.size());
  for (std::size_t d = 0; d < s.images.size(); ++d) {
    const Frame& frame = *s.frames[s.frame_of[d]];
    const Camera& cam = *s.owners[s.frame_owner[s.frame_of[d]]];
    s.calls[d] = {cam.config.id, frame.seq,
                  std::chrono::duration_cast<std::chrono::milliseconds>(frame.captured_at.time_since_epoch()).count(), cam.live};
  }
}

bool Engine::Impl::DetectorStage::replayed(Scratch& s) {
  const auto& replay = engine_.hooks.replay_detections;
  if (!engine_.config.offline || !replay) return false;  // offline: one camera per call
  if (!replay(s.owners[0]->config.id, s.seqs, s.results)) return false;
  if (s.results.size() == s.images.size()) return true;
  record_stage_error(*s.owners[0], model_, Error{ErrorCode::internal, "the replay answered the wrong number of frames"},
                     s.seqs.front());
  return false;  // the model runs it instead
}

void Engine::Impl::DetectorStage::add_frame(PendingFrame item, std::size_t owner, SteadyTime start, Scratch& s) {
  s.frame_owner.push_back(owner);
  s.detection.push_back(item.due ? s.images.size() : kNotDetected);
  if (item.due) {
    const double age = ms_between(item.frame->captured_steady, start);
    s.owners[owner]->age_ms->record(age);
    engine_.age_ms->record(age);
    s.images.push_back(&item.frame->image);  // the pooled Frame does not move
    s.frame_of.push_back(s.frames.size());
    s.seqs.push_back(item.frame->seq);
  }
  s.frames.push_back(std::move(item.frame));
}

namespace {

// Leaves out the detections of no confirmed track, keeping each track's index into the rest.
void drop_unconfirmed(FrameResult& r) {
  int kept = 0;
  for (int i = 0; i < static_cast<int>(r.detections.size()); ++i) {
    if (r.detections[static_cast<std::size_t>(i)].track_id == 0) continue;
    for (TrackedObject& t : r.tracks) {
      if (t.detection == i) t.detection = kept;
    }
    if (kept != i) r.detections[static_cast<std::size_t>(kept)] = r.detections[static_cast<std::size_t>(i)];
    ++kept;
  }
  r.detections.resize(static_cast<std::size_t>(kept));
}

}  // namespace

bool Engine::Impl::track_and_deliver(Camera& cam, const Model& detector, FrameRef frame, const Detections& detections,
                                     SteadyTime start) {
  FrameResult& r = cam.result;
  const int steps = frame_steps(cam, *frame);
  r.frame = std::move(frame);
  r.model = detector.name;
  r.detected = true;
  r.detections.assign(detections.begin(), detections.end());
  r.tracked = cam.tracker != nullptr;
  r.track_events.clear();
  r.tracks.clear();
  r.faces.clear();
  r.inference_started = start;
  if (cam.tracker) {
    if (cam.shots && cam.shots->cut(r.frame->image)) {  // a new shot: whoever is where a track was is someone else
      cam.tracker->end_all(r.track_events);
      cam.shot_cuts.fetch_add(1, std::memory_order_relaxed);
    }
    cam.tracker->update(r.detections, steps, r.tracks, r.track_events);
    if (!cam.config.track.keep_unconfirmed) drop_unconfirmed(r);
    cam.tracks_started.store(cam.tracker->tracks_started(), std::memory_order_relaxed);
    publish_track_events(cam, r);
  }
  cam.inferred.fetch_add(1, std::memory_order_relaxed);
  if (cam.best_faces) {  // the frame goes on; its tracks' kept faces wait for their tracks to end
    cam.faces_detected.fetch_add(r.detections.size(), std::memory_order_relaxed);
    cam.best_faces->track(r);
  } else if (cam.faces_model) {
    cam.faces_detected.fetch_add(r.detections.size(), std::memory_order_relaxed);
    select_faces(r, cam.identities.get(), cam.face_jobs);
    if (!cam.face_jobs.empty()) return true;  // the result waits for its faces (the token stays held)
    if (cam.identities) label_tracks(r, *cam.identities);
  }
  deliver(cam, r);
  end_to_end_ms->record(ms_between(r.frame->captured_steady, SteadyClock::now()));
  r.frame.reset();
  if (cam.best_faces) queue_best_faces(cam, false);  // after the result: on_faces comes after the frames of its faces
  return false;
}

bool Engine::Impl::track_backlog(Camera& cam) {
  while (!cam.detected_backlog.empty()) {
    Camera::Detected d = std::move(cam.detected_backlog.front());
    cam.detected_backlog.pop_front();
    if (d.started == SteadyTime{}) {  // a frame not due for detection
      track_only(cam, std::move(d.frame));
    } else if (track_and_deliver(cam, *models[cam.model], std::move(d.frame), d.detections, d.started)) {
      return true;
    }
  }
  return false;
}

// A sink or hook threw in the middle of run(): give back the tokens this worker still holds
// (a result waiting for its faces and the frames behind it are dropped).
void Engine::Impl::DetectorStage::abandon(int worker) {
  Scratch& s = scratch_[static_cast<std::size_t>(worker)];
  s.frames.clear();
  for (std::size_t o = 0; o < s.owners.size(); ++o) engine_.drop(s.owners[o], model_, s.state[o]);
  s.owners.clear();
}

// The model failed on a batch: run its frames one at a time so that only the frames it
// fails on are lost (their slots in `frames` are emptied and counted against their camera);
// the other cameras of the batch keep their results.
void Engine::Impl::DetectorStage::isolate_failure(Detector& detector, const Error& batch_error, Scratch& s) {
  s.results.resize(s.images.size());
  describe_calls(s);
  for (std::size_t d = 0; d < s.images.size(); ++d) {
    // A live frame a remote worker found too late is not sent again (it would be later still).
    const bool late = batch_error.code == ErrorCode::deadline_exceeded && s.calls[d].live;
    CallContext::Scope scope(std::span<const CallItem>(&s.calls[d], 1));
    Status status = s.images.size() == 1 || late ? Status(batch_error) : safe_detect(detector, {&s.images[d], 1}, s.one);
    if (status.ok() && s.one.size() == 1) {
      s.results[d] = std::move(s.one[0]);
      continue;
    }
    if (status.ok()) status = Error{ErrorCode::internal, "the model returned no result"};
    FrameRef& frame = s.frames[s.frame_of[d]];
    Engine::Impl::record_stage_error(*s.owners[s.frame_owner[s.frame_of[d]]], model_, status.error(), frame->seq);
    frame.reset();
  }
}

std::unique_ptr<ModelStage> Engine::Impl::make_detector_stage(Model& model, std::vector<std::unique_ptr<Detector>> detectors) {
  return std::make_unique<DetectorStage>(*this, model, std::move(detectors));
}

// Counts a model's failure on one of the camera's frames (a live frame a remote detector
// found late apart: frames_late) and logs it at most once a second per camera, so a model failing on every
// frame cannot flood the log.
void Engine::Impl::record_stage_error(Camera& cam, const Model& model, const Error& error, std::uint64_t seq) {
  const bool late = model.detector && error.code == ErrorCode::deadline_exceeded && cam.config.source.live;
  const std::uint64_t count = (late ? cam.late : cam.stage_errors).fetch_add(1, std::memory_order_relaxed) + 1;
  cam.record_error(error);
  const std::int64_t now_ns = to_ns(SteadyClock::now());
  std::int64_t last = cam.last_error_log_ns.load(std::memory_order_relaxed);
  if (now_ns - last >= 1'000'000'000 && cam.last_error_log_ns.compare_exchange_strong(last, now_ns)) {
    spdlog::warn("camera {}: model {} failed on frame {}: {} ({} such errors so far)", cam.config.id, model.name, seq,
                 error.message, count);
  }
}

}  // namespace vigil
