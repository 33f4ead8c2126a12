#include "vigil/pipeline/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "vigil/concurrency/batch_policy.h"
#include "vigil/concurrency/bounded_queue.h"
#include "vigil/concurrency/camera_slot.h"
#include "vigil/concurrency/cpu_governor.h"
#include "vigil/concurrency/timer_service.h"
#include "vigil/core/camera_state.h"
#include "vigil/core/clock.h"
#include "vigil/core/event_bus.h"
#include "vigil/core/metrics.h"
#include "vigil/core/histogram.h"
#include "vigil/core/process_setup.h"
#include "vigil/core/process_stats.h"
#include "vigil/identity/identity.h"
#include "vigil/infer/backend.h"
#include "vigil/pipeline/face_stage.h"
#include "vigil/sink/jsonl_sink.h"
#include "vigil/source/pacer.h"
#include "vigil/source/source.h"
#include "vigil/source/synthetic_source.h"
#include "vigil/track/byte_tracker.h"
#include "vigil/vision/blazeface.h"

namespace vigil {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Frames a file camera may decode ahead of inference.
constexpr std::size_t kFileQueueCapacity = 4;

std::int64_t to_ns(SteadyTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

bool is_retryable(ErrorCode code) {
  return code == ErrorCode::unavailable || code == ErrorCode::deadline_exceeded;
}

// A decoded frame waiting for its camera's pipeline, and whether the detector should see it.
struct PendingFrame {
  FrameRef frame;
  bool due = true;
};
bool not_due(const PendingFrame& p) { return !p.due; }

struct Camera {
  CameraConfig config;
  std::size_t model = 0;
  bool live = false;
  double interval_s = 0;  // nominal frame interval of the source, 0 if unknown

  std::unique_ptr<CameraStateMachine> machine;  // publishes every change on the bus

  // Hand-off: live cameras use the slot, the others the queue.
  CameraSlot<PendingFrame> slot;
  BoundedQueue<PendingFrame> queue{kFileQueueCapacity, OverflowPolicy::block};

  // Scheduling. pending is the camera's token: whoever sets it runs the camera's next step
  // (a track-only step inline, or a place in its model's ready queue and then inference),
  // so one frame per camera is in the pipeline at a time and results stay in frame order.
  std::atomic<bool> pending{false};
  bool inflight = false;  // guarded by Impl::mu
  bool removed = false;   // guarded by Impl::mu
  std::atomic<bool> removed_wait{false};  // remove_camera() waits for inference to finish
  // When the next detection is due (live cameras; written by workers, read by capture).
  std::atomic<std::uint64_t> next_due_seq{0};
  std::atomic<std::int64_t> next_due_ns{0};
  // Same for queued cameras, on the capture thread only (deterministic replay).
  std::int64_t next_due_pts_ms = 0;

  // Capture.
  std::mutex lifecycle_mu;  // serialises start_capture and stop_capture
  std::mutex source_mu;
  std::unique_ptr<Source> source;  // guarded by source_mu
  std::thread thread;
  std::optional<TimerService::TaskId> timer;
  Pacer backoff;  // interruptible sleeps between reconnects
  std::atomic<bool> stopping{false};
  std::atomic<bool> ended{false};  // capture finished for good
  // Live synthetic cameras driven by timers.
  std::unique_ptr<SyntheticSource> synthetic;
  std::unique_ptr<FaultSchedule> faults;
  SteadyTime timeline_start{};
  SteadyTime last_frame_at{};  // timer task only
  bool ever_live = false;       // timer task only
  std::mt19937 rng;             // capture thread or timer task only

  // Tracking (null: off). tracker, result and last_seq belong to the token holder.
  std::unique_ptr<ByteTracker> tracker;
  FrameResult result;  // reused for every result of this camera
  std::uint64_t last_seq = 0;
  bool has_last_seq = false;
  std::atomic<std::uint64_t> predicted{0}, tracks_started{0};

  // Faces (faces_model set): the embedder model, what is known about each track, and the
  // faces of the result waiting in the embedder's queue. Token holder only.
  std::optional<std::size_t> faces_model;
  std::unique_ptr<TrackIdentities> identities;
  std::vector<FaceJob> face_jobs;
  std::atomic<std::uint64_t> faces_detected{0}, faces_embedded{0}, identities_changed{0};

  // Metrics.
  std::atomic<std::int64_t> started_ns{0};  // when capture started (0: not yet)
  std::atomic<std::int64_t> ended_ns{0};    // when capture ended (0: not yet)
  std::atomic<std::uint64_t> decoded{0}, inferred{0}, skipped{0}, decode_errors{0}, reconnects{0};
  std::atomic<std::uint64_t> stage_errors{0};        // frames a model failed on
  std::atomic<std::int64_t> last_error_log_ns{0};    // rate limit of those errors' log lines
  std::shared_ptr<Histogram> age_ms;  // in the engine's metrics registry

  mutable std::mutex info_mu;
  std::string last_error;             // guarded by info_mu
  std::optional<Error> fatal;         // guarded by info_mu: failed for good

  void set_state(CameraState s) { machine->transition(s, SteadyClock::now()); }
  CameraState state() const { return machine->state(); }
  void record_error(const Error& error) {
    std::lock_guard lock(info_mu);
    last_error = error.message;
  }

  // Whether a newly captured frame should be inferred (live cameras).
  bool due_live(const Frame& frame) const {
    if (config.detect.fps > 0) {
      const double tolerance_s = interval_s > 0 ? interval_s * 0.25 : 0.005;
      return to_ns(frame.captured_steady) + static_cast<std::int64_t>(tolerance_s * 1e9) >= next_due_ns.load();
    }
    // A seq below the last detected one means the source restarted its numbering (a stream
    // reconnected): due at once, or the camera would wait until seq caught up again.
    const std::uint64_t next = next_due_seq.load();
    return frame.seq >= next || frame.seq + static_cast<std::uint64_t>(std::max(1, config.detect.every)) < next;
  }
  // Called by the worker when this frame's inference starts (live cameras).
  void advance_due_live(const Frame& frame) {
    if (config.detect.fps > 0) {
      const auto period = static_cast<std::int64_t>(1e9 / config.detect.fps);
      const std::int64_t captured = to_ns(frame.captured_steady);
      const std::int64_t next = next_due_ns.load();
      next_due_ns.store(std::max(next == 0 ? captured + period : next + period, captured + period / 2));
    } else {
      next_due_seq.store(frame.seq + static_cast<std::uint64_t>(std::max(1, config.detect.every)));
    }
  }
  // Whether a frame should be inferred (queued cameras): a fixed grid, capture side only.
  bool due_queued(const Frame& frame) {
    if (config.detect.fps > 0) {
      if (frame.pts_ms + 1 < next_due_pts_ms) return false;
      next_due_pts_ms = std::max(next_due_pts_ms + static_cast<std::int64_t>(1000.0 / config.detect.fps), frame.pts_ms);
      return true;
    }
    return frame.seq % static_cast<std::uint64_t>(std::max(1, config.detect.every)) == 0;
  }
};

// A worker's buffers for the face stage, reused batch to batch.
struct FaceScratch {
  std::vector<FaceInput> inputs;
  std::vector<Embedding> embeddings;
  std::vector<FaceQuality> qualities;
  std::vector<std::size_t> changed;
};

struct ReadyEntry {
  std::shared_ptr<Camera> camera;
  SteadyTime since;
};

struct Model {
  std::size_t index = 0;  // in Impl::models and each worker's detectors / embedders
  std::string name;
  bool detector = true;   // else a face embedder (its batches count faces)
  ModelConfig config;
  BatchPolicy policy;
  std::deque<ReadyEntry> ready;  // guarded by Impl::mu
  std::size_t cameras = 0;       // guarded by Impl::mu: cameras using this model
  std::size_t inflight = 0;      // guarded by Impl::mu: of them, in inference now
  std::atomic<std::uint64_t> batches{0}, items{0};
  std::vector<std::atomic<std::uint64_t>> batch_sizes;
  std::shared_ptr<Histogram> latency_ms;  // in the engine's metrics registry
};

}  // namespace

struct Engine::Impl {
  EngineConfig config;
  EngineHooks hooks;
  int workers_count = 1;
  int inference_threads = 1;
  std::vector<std::unique_ptr<Model>> models;
  std::map<std::string, std::size_t> model_index;
  std::vector<std::unique_ptr<Sink>> sinks;
  std::unique_ptr<CpuGovernor> governor;
  std::unique_ptr<TimerService> timers;
  // Its callbacks point into models (declared above: they outlive it) and cameras (whose
  // series remove_camera removes before letting the camera go).
  MetricsRegistry metrics;
  Histogram end_to_end_ms;
  Histogram age_ms;  // all cameras
  EventBus bus;

  // Scheduler state.
  mutable std::mutex mu;
  std::condition_variable work_cv;    // a camera became ready, or stopping
  std::condition_variable idle_cv;    // a camera left inference, or a camera ended
  bool stopping = false;              // guarded by mu
  std::size_t idle_workers = 0;       // guarded by mu: workers not running a batch
  std::vector<std::shared_ptr<Camera>> cameras;  // guarded by mu
  std::optional<Error> first_error;              // guarded by mu
  bool stop_requested = false;                   // guarded by mu
  bool started = false;                          // guarded by mu
  bool stopped = false;                          // guarded by mu
  std::vector<std::thread> workers;
  std::vector<std::vector<std::unique_ptr<Detector>>> detectors;  // [worker][model], null for embedders
  std::vector<std::vector<std::unique_ptr<FaceEmbedder>>> embedders;  // [worker][model], null for detectors
  Gallery gallery;                       // immutable once the engine is created
  std::unique_ptr<AnonymousClusters> clusters;  // shared by all cameras (own mutex)

  // --- scheduling -------------------------------------------------------------------------

  bool has_frame(Camera& cam) const { return cam.live ? cam.slot.has_item() : !cam.queue.empty(); }

  // Runs the camera's pipeline as far as it goes without the detector, on the calling thread
  // (capture, timer or worker): takes the token, runs track-only steps for frames not due for
  // detection, in order, then either hands the token to the model's ready queue (a due frame
  // waits) or gives it back. A thread that finds the token taken returns at once: the holder
  // will see the new frame.
  void pump(const std::shared_ptr<Camera>& cam) {
    for (;;) {
      if (cam->pending.exchange(true)) return;
      if (cam->tracker) {
        while (std::optional<PendingFrame> item = cam->live ? cam->slot.take_if(not_due) : cam->queue.try_pop_if(not_due)) {
          track_only(*cam, std::move(item->frame));
        }
      }
      if (has_frame(*cam)) {
        {
          std::lock_guard lock(mu);
          if (cam->removed || stopping) {
            cam->pending = false;
            return;
          }
          models[cam->model]->ready.push_back({cam, SteadyClock::now()});
        }
        work_cv.notify_one();
        return;
      }
      cam->pending = false;
      // Only a removal or the end of a run waits for a camera to go idle; waking the main
      // thread on every frame would cost a context switch each.
      if (cam->removed_wait.load() || cam->ended.load()) idle_cv.notify_all();
      if (!has_frame(*cam)) return;  // else a frame arrived after we looked: go again
    }
  }

  // Frame steps since the camera's previous result (frames replaced or skipped count); 1 after
  // a reconnect restarts the source's numbering.
  static int frame_steps(Camera& cam, const Frame& frame) {
    int steps = 1;
    if (cam.has_last_seq && frame.seq > cam.last_seq) {
      steps = static_cast<int>(std::min<std::uint64_t>(frame.seq - cam.last_seq, 1000));
    }
    cam.last_seq = frame.seq;
    cam.has_last_seq = true;
    return steps;
  }

  // A frame of a tracked camera that skips the detector: its tracks are predicted. Token held.
  void track_only(Camera& cam, FrameRef frame) {
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
  void publish_track_events(const Camera& cam, const FrameResult& r) {
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

  // Hands a result to the sinks and the result hook. A sink that fails stops the run.
  void deliver(const FrameResult& result) {
    for (auto& sink : sinks) {
      if (Status st = sink->write(result); !st.ok()) fail(st.error());
    }
    if (hooks.on_result) hooks.on_result(result);
  }

  // A camera's inference finished in `model`: give its token back and let it go on.
  void finish(const std::shared_ptr<Camera>& cam, Model& model) {
    {
      std::lock_guard lock(mu);
      cam->inflight = false;
      --model.inflight;
    }
    cam->pending = false;
    if (cam->removed_wait.load() || cam->ended.load()) idle_cv.notify_all();
    if (has_frame(*cam)) pump(cam);
  }

  void worker_loop(int w) {
    std::vector<ReadyEntry> batch;
    std::vector<FrameRef> frames;
    std::vector<std::shared_ptr<Camera>> owners;
    std::vector<const Image*> images;
    std::vector<Detections> results;
    std::vector<char> handed;  // owners[i] went on to its face stage
    FaceScratch face_scratch;
    std::unique_lock lock(mu);
    for (;;) {
      if (stopping) return;
      // Pick the model whose batch should close now; else wait for the earliest deadline.
      const SteadyTime now = SteadyClock::now();
      std::optional<SteadyTime> wake;
      Model* chosen = nullptr;
      std::size_t take = 0;
      for (auto& model : models) {
        if (model->ready.empty()) continue;
        const std::size_t busy = model->ready.size() + model->inflight;
        const std::size_t could_join = model->cameras > busy ? model->cameras - busy : 0;
        const auto worker_count = static_cast<std::size_t>(workers_count);
        const std::size_t fair_share = (model->cameras + worker_count - 1) / worker_count;
        const BatchDecision d = decide_batch(model->policy, model->ready.size(), model->ready.front().since, now,
                                             idle_workers, could_join, std::max<std::size_t>(1, fair_share));
        if (d.close) {
          chosen = model.get();
          take = d.take;
          break;
        }
        if (!wake || d.wait_until < *wake) wake = d.wait_until;
      }
      if (!chosen) {
        if (wake) {
          work_cv.wait_until(lock, *wake);
        } else {
          work_cv.wait(lock);
        }
        continue;
      }
      batch.clear();
      for (std::size_t i = 0; i < take; ++i) {
        batch.push_back(std::move(chosen->ready.front()));
        chosen->ready.pop_front();
        batch.back().camera->inflight = true;
      }
      chosen->inflight += take;
      if (!chosen->ready.empty()) work_cv.notify_one();  // another worker can start the next batch
      --idle_workers;
      lock.unlock();
      try {
        if (chosen->detector) {
          run_batch(w, *chosen, batch, frames, owners, images, results, handed);
        } else {
          handed.clear();
          run_faces(w, *chosen, batch, owners, face_scratch);
        }
      } catch (const std::exception& e) {  // a sink or hook threw: stop the run, not the process
        fail(Error{ErrorCode::internal, std::string("worker: ") + e.what()});
        frames.clear();
        for (std::size_t i = 0; i < owners.size(); ++i) {
          if (i < handed.size() && handed[i]) continue;
          owners[i]->result.frame.reset();  // this worker holds the camera's token
          finish(owners[i], *chosen);
        }
      }
      lock.lock();
      ++idle_workers;
    }
  }

  void run_batch(int w, Model& model, std::vector<ReadyEntry>& batch, std::vector<FrameRef>& frames,
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
      if (cam.live) cam.advance_due_live(*frame);
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

  // A detected frame whose faces are to be embedded: the camera leaves the detector and
  // waits in its embedder's ready queue, still holding its token (results stay in order).
  void to_face_stage(const std::shared_ptr<Camera>& cam, Model& from) {
    Model& to = *models[*cam->faces_model];
    {
      std::lock_guard lock(mu);
      --from.inflight;
      if (!cam->removed && !stopping) {
        to.ready.push_back({cam, SteadyClock::now()});
        work_cv.notify_one();
        return;
      }
      cam->inflight = false;
    }
    cam->result.frame.reset();
    cam->pending = false;
    idle_cv.notify_all();
  }

  // Embeds the waiting faces of a batch of cameras in one model call (ceil(faces /
  // max_batch) when they are many), resolves identities, delivers the results.
  void run_faces(int w, Model& model, std::vector<ReadyEntry>& batch, std::vector<std::shared_ptr<Camera>>& owners,
                 FaceScratch& f) {
    owners.clear();
    for (auto& e : batch) owners.push_back(e.camera);
    if (!governor->admit()) {  // stopping
      for (auto& cam : owners) {
        cam->result.frame.reset();
        finish(cam, model);
      }
      return;
    }
    FaceEmbedder& embedder = *embedders[static_cast<std::size_t>(w)][model.index];
    f.inputs.clear();
    for (auto& cam : owners) {
      for (const FaceJob& job : cam->face_jobs) {
        f.inputs.push_back({&cam->result.frame->image, &cam->result.detections[static_cast<std::size_t>(job.detection)]});
      }
    }
    const SteadyTime start = SteadyClock::now();
    Status status = safe_embed(embedder, f.inputs, f.embeddings, f.qualities);
    model.latency_ms->record(ms_between(start, SteadyClock::now()));
    model.batches.fetch_add(1, std::memory_order_relaxed);
    model.items.fetch_add(f.inputs.size(), std::memory_order_relaxed);
    model.batch_sizes[std::min(f.inputs.size(), model.batch_sizes.size() - 1)].fetch_add(1, std::memory_order_relaxed);
    std::size_t offset = 0;
    for (auto& owner : owners) {
      Camera& cam = *owner;
      FrameResult& r = cam.result;
      const std::size_t n = cam.face_jobs.size();
      if (status.ok()) {
        apply_faces(r, cam.face_jobs, std::span(f.embeddings).subspan(offset, n), std::span(f.qualities).subspan(offset, n),
                    cam.identities.get(), &gallery, clusters.get(), config.identity, f.changed);
        cam.faces_embedded.fetch_add(n, std::memory_order_relaxed);
        publish_identities(cam, r, f.changed);
      } else {  // the result still goes out, without faces; the failure is counted and logged
        r.faces.clear();
        record_stage_error(cam, model, status.error(), r.frame->seq);
      }
      offset += n;
      if (cam.identities) label_tracks(r, *cam.identities);
      deliver(r);
      end_to_end_ms.record(ms_between(r.frame->captured_steady, SteadyClock::now()));
      r.frame.reset();
      cam.face_jobs.clear();
    }
    for (auto& owner : owners) finish(owner, model);
  }

  void publish_identities(Camera& cam, const FrameResult& r, const std::vector<std::size_t>& changed) {
    for (std::size_t i : changed) {
      const FaceResult& face = r.faces[i];
      Event event;
      event.kind = EventKind::identity_matched;
      event.at = r.frame->captured_at;
      event.camera = cam.config.id;
      event.track_id = face.track_id;
      event.frame_seq = r.frame->seq;
      event.bbox = r.detections[static_cast<std::size_t>(face.detection)].bbox;
      event.detail = face.identity.name;
      event.similarity = face.identity.similarity;
      event.margin = face.identity.margin;
      event.known = face.identity.known;
      cam.identities_changed.fetch_add(1, std::memory_order_relaxed);
      bus.publish(std::move(event));
    }
  }

  static Status safe_embed(FaceEmbedder& embedder, std::span<const FaceInput> faces, std::vector<Embedding>& out,
                           std::vector<FaceQuality>& qualities) {
    try {
      return embedder.embed(faces, out, qualities);
    } catch (const std::exception& e) {
      return Error{ErrorCode::internal, std::string("exception: ") + e.what()};
    } catch (...) {
      return Error{ErrorCode::internal, "unknown exception"};
    }
  }

  // A model call that throws is an error like any other, never std::terminate.
  static Status safe_detect(Detector& detector, std::span<const Image* const> images, std::vector<Detections>& results) {
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
  void isolate_failure(Detector& detector, Model& model, const Error& batch_error, std::vector<const Image*>& images,
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
  static void record_stage_error(Camera& cam, const Model& model, const Error& error, std::uint64_t seq) {
    const std::uint64_t count = cam.stage_errors.fetch_add(1, std::memory_order_relaxed) + 1;
    cam.record_error(error);
    const std::int64_t now_ns = to_ns(SteadyClock::now());
    std::int64_t last = cam.last_error_log_ns.load(std::memory_order_relaxed);
    if (now_ns - last >= 1'000'000'000 && cam.last_error_log_ns.compare_exchange_strong(last, now_ns)) {
      spdlog::warn("camera {}: model {} failed on frame {}: {} ({} such errors so far)", cam.config.id, model.name, seq,
                   error.message, count);
    }
  }

  void fail(const Error& error) {
    {
      std::lock_guard lock(mu);
      if (!first_error) first_error = error;
      stop_requested = true;
    }
    idle_cv.notify_all();
  }

  // --- metrics ----------------------------------------------------------------------------
  // A camera's and a model's numbers in the registry: the atomics the hot path already
  // updates are read at scrape time, the histograms live in the registry.

  void register_camera_metrics(const std::shared_ptr<Camera>& cam) {
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

  void register_model_metrics(Model& model) {
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

  // --- capture ----------------------------------------------------------------------------

  // Hands a decoded frame to the scheduler according to the camera's kind.
  // Frames not due for detection go on only when the camera tracks (to get predicted tracks).
  void hand_off(const std::shared_ptr<Camera>& cam, FrameRef frame) {
    cam->decoded.fetch_add(1, std::memory_order_relaxed);
    const bool due = cam->live ? cam->due_live(*frame) : cam->due_queued(*frame);
    if (!due) {
      cam->skipped.fetch_add(1, std::memory_order_relaxed);
      if (!cam->tracker) return;
    }
    if (cam->live) {
      cam->slot.publish({std::move(frame), due});
      pump(cam);
      return;
    }
    if (cam->queue.push({std::move(frame), due}) == PushResult::pushed) pump(cam);
  }

  void end_capture(const std::shared_ptr<Camera>& cam, CameraState final_state, std::optional<Error> fatal) {
    if (fatal) {
      cam->record_error(*fatal);
      std::lock_guard lock(cam->info_mu);
      cam->fatal = fatal;
    }
    cam->set_state(final_state);
    cam->ended_ns = to_ns(SteadyClock::now());
    cam->ended = true;
    idle_cv.notify_all();
  }

  // Reader thread of a file, stream or unpaced synthetic camera.
  void capture_loop(const std::shared_ptr<Camera>& cam) {
    const SourceConfig& sc = cam->config.source;
    const bool may_reconnect = sc.type == SourceType::stream && sc.reconnect;
    auto delay = std::chrono::milliseconds(sc.reconnect_initial_ms);
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    while (!cam->stopping) {
      Source* source = nullptr;
      {
        std::lock_guard lock(cam->source_mu);
        source = cam->source.get();
      }
      if (!source) {
        cam->set_state(CameraState::connecting);
        auto opened = open_source(sc, cam->config.id);
        if (!opened.ok()) {
          cam->record_error(opened.error());
          if (!may_reconnect || !is_retryable(opened.error().code)) {
            end_capture(cam, CameraState::failed, opened.error());
            return;
          }
          cam->reconnects.fetch_add(1, std::memory_order_relaxed);
          const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(delay * jitter(cam->rng));
          if (!cam->backoff.wait_until(SteadyClock::now() + wait)) break;
          delay = std::min(delay * 2, std::chrono::milliseconds(sc.reconnect_max_ms));
          continue;
        }
        std::lock_guard lock(cam->source_mu);
        if (cam->stopping) break;
        cam->source = std::move(opened).value();
        source = cam->source.get();
      }
      auto frame = source->read();
      if (!frame.ok()) {
        if (frame.error().code == ErrorCode::cancelled && cam->stopping) break;
        cam->decode_errors.fetch_add(1, std::memory_order_relaxed);
        cam->record_error(frame.error());
        if (may_reconnect && frame.error().code != ErrorCode::invalid_argument) {
          cam->set_state(CameraState::stalled);
          std::unique_ptr<Source> dead;
          {
            std::lock_guard lock(cam->source_mu);
            dead = std::move(cam->source);  // closed outside the lock
          }
          continue;  // reconnect
        }
        end_capture(cam, CameraState::failed, frame.error());
        return;
      }
      if (!*frame) {  // end of stream
        if (may_reconnect) {
          cam->set_state(CameraState::stalled);
          std::lock_guard lock(cam->source_mu);
          cam->source.reset();
          continue;
        }
        cam->queue.close();
        end_capture(cam, CameraState::stopped, std::nullopt);
        return;
      }
      if (cam->state() != CameraState::live) {
        cam->set_state(CameraState::live);  // live once a decoded frame arrives
        delay = std::chrono::milliseconds(sc.reconnect_initial_ms);
      }
      hand_off(cam, std::move(frame).value());
    }
    cam->queue.close();
    end_capture(cam, CameraState::stopped, std::nullopt);
  }

  // One tick of a live synthetic camera, on a shared timer thread.
  std::optional<SteadyTime> synthetic_tick(const std::shared_ptr<Camera>& cam, SteadyTime due) {
    if (cam->stopping) return std::nullopt;
    const double interval = 1.0 / cam->config.source.fps;
    const SteadyTime now = SteadyClock::now();
    const double t = std::chrono::duration<double>(due - cam->timeline_start).count();
    // Frame index on the camera's own timeline; a late tick skips to the current frame.
    const auto index = static_cast<std::uint64_t>(std::llround(t / interval));
    const FaultSchedule::Phase phase = cam->faults->phase_at(t);
    if (phase == FaultSchedule::Phase::disconnected) {
      cam->set_state(CameraState::connecting);
    } else if (phase == FaultSchedule::Phase::stalled) {
      const double silent_ms = std::chrono::duration<double, std::milli>(now - cam->last_frame_at).count();
      if (silent_ms >= cam->config.source.read_timeout_ms) cam->set_state(CameraState::stalled);
    } else if (cam->faults->corrupt_frame(index, interval)) {
      cam->decode_errors.fetch_add(1, std::memory_order_relaxed);
    } else {
      auto frame = cam->synthetic->render(index);
      if (!frame.ok()) {
        end_capture(cam, CameraState::failed, frame.error());
        return std::nullopt;
      }
      cam->last_frame_at = SteadyClock::now();
      if (cam->state() != CameraState::live) {
        if (cam->state() == CameraState::stalled) cam->set_state(CameraState::connecting);
        if (cam->ever_live) cam->reconnects.fetch_add(1, std::memory_order_relaxed);
        cam->ever_live = true;
        cam->set_state(CameraState::live);
      }
      hand_off(cam, std::move(frame).value());
    }
    // Next tick on the grid after now (skipping ticks we are too late for), plus jitter.
    auto next_index = index + 1;
    const double now_t = std::chrono::duration<double>(SteadyClock::now() - cam->timeline_start).count();
    if (static_cast<double>(next_index) * interval < now_t - interval) {
      next_index = static_cast<std::uint64_t>(now_t / interval) + 1;
    }
    double next_t = static_cast<double>(next_index) * interval;
    const double jitter_ms = cam->faults->config().jitter_ms;
    if (jitter_ms > 0) {
      std::uniform_real_distribution<double> j(-jitter_ms, jitter_ms);
      next_t += std::clamp(j(cam->rng), -0.45 * interval * 1000, 0.45 * interval * 1000) / 1000.0;
    }
    return cam->timeline_start + std::chrono::duration_cast<SteadyTime::duration>(std::chrono::duration<double>(next_t));
  }

  void start_capture(const std::shared_ptr<Camera>& cam) {
    std::lock_guard lifecycle(cam->lifecycle_mu);
    if (cam->stopping) return;  // stopped before it started (engine stopping meanwhile)
    cam->started_ns = to_ns(SteadyClock::now());
    if (cam->synthetic) {
      cam->timeline_start = SteadyClock::now();
      cam->last_frame_at = cam->timeline_start;
      cam->timer = timers->schedule(cam->timeline_start, [this, cam](SteadyTime due) { return synthetic_tick(cam, due); });
      return;
    }
    cam->thread = std::thread([this, cam] { capture_loop(cam); });
  }

  void stop_capture(Camera& cam) {
    std::lock_guard lifecycle(cam.lifecycle_mu);
    cam.stopping = true;
    cam.backoff.interrupt();
    {
      std::lock_guard lock(cam.source_mu);
      if (cam.source) cam.source->interrupt();
    }
    cam.queue.close();
    if (cam.timer) {
      timers->cancel(*cam.timer);
      cam.timer.reset();
    }
    if (cam.thread.joinable()) cam.thread.join();
    if (!cam.ended) {
      cam.set_state(CameraState::stopped);
      cam.ended_ns = to_ns(SteadyClock::now());
      cam.ended = true;
    }
  }
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  bool running = false;
  {
    std::lock_guard lock(impl_->mu);
    running = impl_->started && !impl_->stopped;
  }
  if (running) {
    request_stop();
    (void)run(0.0);
  }
}

Result<std::unique_ptr<Engine>> Engine::create(const EngineConfig& config, EngineHooks hooks) {
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
  if (!impl->hooks.make_detector) {
    impl->hooks.make_detector = [](const std::string&, const ModelConfig& m) -> Result<std::unique_ptr<Detector>> {
      auto detector = BlazeFace::create(m.blazeface);
      if (!detector.ok()) return detector.error();
      return std::unique_ptr<Detector>(std::move(detector).value());
    };
  }
  for (const auto& [name, model_config] : config.models) {
    auto model = std::make_unique<Model>();
    model->index = impl->models.size();
    model->name = name;
    model->config = model_config;
    model->detector = model_config.is_detector();
    model->policy.max_batch = static_cast<std::size_t>(std::max(1, model_config.max_batch()));
    model->policy.max_delay =
        std::chrono::microseconds(static_cast<std::int64_t>(std::max(0.0, model_config.max_delay_ms) * 1000));
    model->batch_sizes = std::vector<std::atomic<std::uint64_t>>(model->policy.max_batch + 1);
    impl->register_model_metrics(*model);
    impl->model_index[name] = impl->models.size();
    impl->models.push_back(std::move(model));
  }
  impl->detectors.resize(static_cast<std::size_t>(impl->workers_count));
  impl->embedders.resize(static_cast<std::size_t>(impl->workers_count));
  for (std::size_t w = 0; w < impl->detectors.size(); ++w) {
    for (const auto& model : impl->models) {
      if (model->detector) {
        auto detector = impl->hooks.make_detector(model->name, model->config);
        if (!detector.ok()) return with_context(detector.error(), "model " + model->name);
        impl->detectors[w].push_back(std::move(detector).value());
        impl->embedders[w].push_back(nullptr);
      } else {
        auto embedder = FaceEmbedder::create(model->config.embedder);
        if (!embedder.ok()) return with_context(embedder.error(), "model " + model->name);
        impl->detectors[w].push_back(nullptr);
        impl->embedders[w].push_back(std::move(embedder).value());
      }
    }
  }
  if (!config.gallery.empty()) {
    // Embedded once, at start, with the first detector and embedder of the config.
    Detector* detector = nullptr;
    FaceEmbedder* embedder = nullptr;
    for (std::size_t m = 0; m < impl->models.size(); ++m) {
      if (!detector && impl->detectors[0][m]) detector = impl->detectors[0][m].get();
      if (!embedder && impl->embedders[0][m]) embedder = impl->embedders[0][m].get();
    }
    if (!detector || !embedder) {
      return Error{ErrorCode::invalid_argument, "identity.gallery needs a detector and a face_embedder model"};
    }
    std::vector<std::string> warnings;
    auto gallery = load_gallery(config.gallery, *detector, *embedder, warnings);
    for (const auto& w : warnings) spdlog::warn("gallery: {}", w);
    if (!gallery.ok()) return gallery.error();
    impl->gallery = std::move(gallery).value();
    spdlog::info("gallery {}: {} people, {} photos embedded", config.gallery, impl->gallery.people(),
                 impl->gallery.embeddings());
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
  std::unique_ptr<Engine> engine(new Engine(std::move(impl)));
  for (const auto& camera : config.cameras) VIGIL_RETURN_IF_ERROR(engine->add_camera(camera));
  return engine;
}

Status Engine::add_camera(const CameraConfig& config) {
  Impl& s = *impl_;
  const auto found = s.model_index.find(config.detect.model);
  if (found == s.model_index.end()) {
    return Error{ErrorCode::invalid_argument, "camera " + config.id + ": unknown model '" + config.detect.model + "'"};
  }
  auto cam = std::make_shared<Camera>();
  cam->config = config;
  cam->model = found->second;
  if (!s.models[cam->model]->detector) {
    return Error{ErrorCode::invalid_argument, "camera " + config.id + ": '" + config.detect.model + "' is not a detector"};
  }
  if (!config.faces_model.empty()) {
    const auto faces = s.model_index.find(config.faces_model);
    if (faces == s.model_index.end() || s.models[faces->second]->detector) {
      return Error{ErrorCode::invalid_argument, "camera " + config.id + ": '" + config.faces_model + "' is not a face_embedder"};
    }
    cam->faces_model = faces->second;
  }
  cam->rng.seed(static_cast<std::uint32_t>(std::hash<std::string>{}(config.id)));
  const SourceConfig& sc = config.source;
  cam->live = sc.live;
  cam->faults = std::make_unique<FaultSchedule>(sc.faults);
  cam->machine = std::make_unique<CameraStateMachine>(
      SteadyClock::now(), [&s, raw = cam.get()](CameraState from, CameraState to, SteadyTime) {
        Event event;
        event.kind = EventKind::camera_state;
        event.camera = raw->config.id;
        event.from = from;
        event.to = to;
        {
          std::lock_guard lock(raw->info_mu);
          if (to != CameraState::live) event.detail = raw->last_error;
        }
        s.bus.publish(std::move(event));
      });
  if (config.track.enabled) cam->tracker = std::make_unique<ByteTracker>(config.track.tracker);
  if (cam->faces_model && cam->tracker) cam->identities = std::make_unique<TrackIdentities>(s.config.identity);
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
    cam->source = std::move(source).value();
  } else {
    cam->interval_s = sc.fps > 0 ? 1.0 / sc.fps : 0;
  }
  bool start_now = false;
  {
    std::lock_guard lock(s.mu);
    for (const auto& other : s.cameras) {
      if (other->config.id == config.id) {
        return Error{ErrorCode::invalid_argument, "camera " + config.id + ": a camera with this id already runs"};
      }
    }
    s.cameras.push_back(cam);
    ++s.models[cam->model]->cameras;
    if (cam->faces_model) ++s.models[*cam->faces_model]->cameras;
    start_now = s.started && !s.stopped;
  }
  s.register_camera_metrics(cam);  // before capture starts: the hot path records into it
  if (start_now) s.start_capture(cam);
  return {};
}

Status Engine::remove_camera(const std::string& id) {
  Impl& s = *impl_;
  std::shared_ptr<Camera> cam;
  {
    std::lock_guard lock(s.mu);
    auto it = std::find_if(s.cameras.begin(), s.cameras.end(), [&](const auto& c) { return c->config.id == id; });
    if (it == s.cameras.end()) return Error{ErrorCode::not_found, "no camera '" + id + "'"};
    cam = *it;
    s.cameras.erase(it);
    cam->removed = true;
    --s.models[cam->model]->cameras;
    auto& ready = s.models[cam->model]->ready;
    ready.erase(std::remove_if(ready.begin(), ready.end(), [&](const ReadyEntry& e) { return e.camera == cam; }),
                ready.end());
    if (cam->faces_model) {
      // A result waiting for its faces is dropped with the camera (the token came with it).
      Model& faces = *s.models[*cam->faces_model];
      --faces.cameras;
      const auto waiting = std::remove_if(faces.ready.begin(), faces.ready.end(), [&](const ReadyEntry& e) { return e.camera == cam; });
      if (waiting != faces.ready.end()) {
        faces.ready.erase(waiting, faces.ready.end());
        cam->inflight = false;
        cam->result.frame.reset();
        cam->pending = false;
      }
    }
  }
  s.stop_capture(*cam);
  {
    // In-flight work finishes before the decoder goes.
    cam->removed_wait = true;
    std::unique_lock lock(s.mu);
    s.idle_cv.wait(lock, [&] { return !cam->inflight; });
  }
  cam->slot.clear();
  while (cam->queue.try_pop()) {
  }
  {
    std::lock_guard lock(cam->source_mu);
    cam->source.reset();  // releases the decoder
  }
  cam->synthetic.reset();
  s.metrics.remove_matching("camera", id);
  cam.reset();  // the last reference, unless a worker's batch vector still holds one
  release_free_memory();
  s.idle_cv.notify_all();
  return {};
}

void Engine::start() {
  Impl& s = *impl_;
  std::vector<std::shared_ptr<Camera>> cameras;
  {
    std::lock_guard lock(s.mu);
    if (s.started) return;
    s.started = true;
    cameras = s.cameras;
  }
  {
    std::lock_guard lock(s.mu);
    s.idle_workers = static_cast<std::size_t>(s.workers_count);
  }
  for (int w = 0; w < s.workers_count; ++w) s.workers.emplace_back([&s, w] { s.worker_loop(w); });
  for (auto& cam : cameras) s.start_capture(cam);
}

void Engine::request_stop() {
  {
    std::lock_guard lock(impl_->mu);
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
  double last_decoded = 0, last_inferred = 0;
  double last_cpu = process_cpu_seconds();
  auto last_time = begin;

  std::unique_lock lock(s.mu);
  if (s.stopped) return s.first_error ? Status(*s.first_error) : Status{};
  for (;;) {
    if (s.stop_requested || SteadyClock::now() >= deadline) break;
    const bool all_done = std::all_of(s.cameras.begin(), s.cameras.end(), [&](const auto& c) {
      return c->ended.load() && !c->pending.load() && !s.has_frame(*c);
    });
    if (all_done && !s.cameras.empty()) break;
    s.idle_cv.wait_until(lock, std::min(deadline, next_status));
    if (SteadyClock::now() >= next_status && s.config.status_interval_s > 0) {
      // Rates from the registry's totals (a camera removed meanwhile can make them dip: floor 0).
      const double decoded = s.metrics.total("vigil_frames_decoded_total");
      const double inferred = s.metrics.total("vigil_frames_inferred_total");
      std::size_t live = 0;
      double age_p99 = 0;
      for (const auto& c : s.cameras) {
        live += c->state() == CameraState::live;
        age_p99 = std::max(age_p99, c->age_ms->percentile(0.99));
      }
      const auto now = SteadyClock::now();
      const double dt = std::chrono::duration<double>(now - last_time).count();
      const double cpu = process_cpu_seconds();
      spdlog::info("status: {}/{} cameras live, decode {:.1f} fps, infer {:.1f} fps, frame age p99 {:.0f} ms, "
                   "cpu {:.2f} cores, {} threads",
                   live, s.cameras.size(), std::max(0.0, decoded - last_decoded) / dt,
                   std::max(0.0, inferred - last_inferred) / dt, age_p99, (cpu - last_cpu) / dt,
                   process_thread_count());
      last_decoded = decoded;
      last_inferred = inferred;
      last_cpu = cpu;
      last_time = now;
      next_status = now + status_every;
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
    std::lock_guard guard(s.mu);
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
      std::lock_guard info(cam->info_mu);
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

}  // namespace vigil
