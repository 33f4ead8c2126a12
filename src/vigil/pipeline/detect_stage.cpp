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
  deliver(r);
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

void Engine::Impl::run_batch(int w, Model& model, std::vector<ReadyEntry>& batch, std::vector<FrameRef>& frames,
               std::vector<std::shared_ptr<Camera>>& owners, std::vector<const Image*>& images,
               std::vector<Detections>& results, std::vector<char>& handed) {
  frames.clear();
  owners.clear();
  images.clear();
  handed.clear();
  if (!governor->admit()) {  // stopping
    for (auto& e : batch) finish(e.camera, model);
    return;
  }
  // Take each camera's newest frame now, at the last moment.
  const SteadyTime start = SteadyClock::now();
  for (auto& e : batch) {
    Camera& cam = *e.camera;
    std::optional<PendingFrame> item = cam.live ? cam.slot.take() : cam.queue.try_pop();
    if (!item || !item->frame) {
      finish(e.camera, model);
      continue;
    }
    FrameRef& frame = item->frame;
    if (cam.live) cam.cadence.advance_live(*frame);
    const double age = ms_between(frame->captured_steady, start);
    cam.age_ms->record(age);
    age_ms.record(age);
    images.push_back(&frame->image);  // the pooled Frame does not move
    frames.push_back(std::move(frame));
    owners.push_back(e.camera);
    handed.push_back(0);
  }
  if (!frames.empty()) {
    Detector& detector = *detectors[static_cast<std::size_t>(w)][model.index];
    Status status = safe_detect(detector, images, results);
    const SteadyTime done = SteadyClock::now();
    if (!status.ok()) isolate_failure(detector, model, status.error(), images, results, owners, frames);
    {
      model.latency_ms->record(ms_between(start, done));
      model.batches.fetch_add(1, std::memory_order_relaxed);
      model.items.fetch_add(frames.size(), std::memory_order_relaxed);
      model.batch_sizes[std::min(frames.size(), model.batch_sizes.size() - 1)].fetch_add(1, std::memory_order_relaxed);
      for (std::size_t i = 0; i < frames.size(); ++i) {
        if (!frames[i]) continue;  // the model failed on this frame (counted)
        Camera& cam = *owners[i];
        FrameResult& r = cam.result;  // this worker holds the camera's token
        const int steps = frame_steps(cam, *frames[i]);
        r.frame = std::move(frames[i]);
        r.model = model.name;
        r.detected = true;
        r.detections.assign(results[i].begin(), results[i].end());
        r.tracked = cam.tracker != nullptr;
        r.track_events.clear();
        r.tracks.clear();
        r.faces.clear();
        r.inference_started = start;
        if (cam.tracker) {
          cam.tracker->update(r.detections, steps, r.tracks, r.track_events);
          cam.tracks_started.store(cam.tracker->tracks_started(), std::memory_order_relaxed);
          publish_track_events(cam, r);
        }
        cam.inferred.fetch_add(1, std::memory_order_relaxed);
        if (cam.faces_model) {
          cam.faces_detected.fetch_add(r.detections.size(), std::memory_order_relaxed);
          select_faces(r, cam.identities.get(), cam.face_jobs);
          if (!cam.face_jobs.empty()) {  // the result waits for its faces (the token stays held)
            handed[i] = 1;
            continue;
          }
          if (cam.identities) label_tracks(r, *cam.identities);
        }
        deliver(r);
        end_to_end_ms.record(ms_between(r.frame->captured_steady, SteadyClock::now()));
        r.frame.reset();
      }
    }
  }
  frames.clear();  // back to the pools before the cameras become ready again
  for (std::size_t i = 0; i < owners.size(); ++i) {
    if (handed[i]) {
      to_face_stage(owners[i], model);
    } else {
      finish(owners[i], model);
    }
  }
}

// A model call that throws is an error like any other, never std::terminate.
Status Engine::Impl::safe_detect(Detector& detector, std::span<const Image* const> images, std::vector<Detections>& results) {
  try {
    return detector.detect(images, results);
  } catch (const std::exception& e) {
    return Error{ErrorCode::internal, std::string("exception: ") + e.what()};
  } catch (...) {
    return Error{ErrorCode::internal, "unknown exception"};
  }
}

// The model failed on a batch: run its frames one at a time so that only the frames it
// fails on are lost (their slots in `frames` are emptied and counted against their camera);
// the other cameras of the batch keep their results.
void Engine::Impl::isolate_failure(Detector& detector, Model& model, const Error& batch_error, std::vector<const Image*>& images,
                     std::vector<Detections>& results, std::vector<std::shared_ptr<Camera>>& owners,
                     std::vector<FrameRef>& frames) {
  results.resize(frames.size());
  std::vector<Detections> one;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    Status status = frames.size() == 1 ? Status(batch_error) : safe_detect(detector, {&images[i], 1}, one);
    if (status.ok() && one.size() == 1) {
      results[i] = std::move(one[0]);
      continue;
    }
    if (status.ok()) status = Error{ErrorCode::internal, "the model returned no result"};
    record_stage_error(*owners[i], model, status.error(), frames[i]->seq);
    frames[i].reset();
  }
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
