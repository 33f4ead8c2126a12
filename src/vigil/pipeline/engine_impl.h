// Engine::Impl: the live engine's internals, shared by the files that implement it
// (engine.cpp: lifecycle; scheduler.cpp: camera tokens, ready queues and workers;
// detect_stage.cpp and embed_stage.cpp: the model stages; capture.cpp: sources, reconnects
// and synthetic timers; engine_metrics.cpp: the registry and status). Private to the
// pipeline module: nothing outside src/vigil/pipeline includes it.
#pragma once

#include "vigil/pipeline/engine.h"
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <random>
#include <thread>
#include "vigil/concurrency/batcher.h"
#include "vigil/concurrency/edge.h"
#include "vigil/concurrency/cpu_governor.h"
#include "vigil/concurrency/timer_service.h"
#include "vigil/core/camera_state.h"
#include "vigil/core/clock.h"
#include "vigil/core/event_bus.h"
#include "vigil/core/metrics.h"
#include "vigil/core/mutex.h"
#include "vigil/core/histogram.h"
#include "vigil/core/process_setup.h"
#include "vigil/core/process_stats.h"
#include "vigil/identity/identity.h"
#include "vigil/infer/backend.h"
#include "vigil/pipeline/cadence.h"
#include "vigil/pipeline/face_stage.h"
#include "vigil/pipeline/stage_spec.h"
#include "vigil/sink/jsonl_sink.h"
#include "vigil/source/pacer.h"
#include "vigil/core/reconnect.h"
#include "vigil/source/source.h"
#include "vigil/source/synthetic_source.h"
#include "vigil/track/byte_tracker.h"
#include "vigil/track/shot_cut.h"
#include "vigil/vision/blazeface.h"

namespace vigil {

namespace engine_internal {

using SteadyClock = std::chrono::steady_clock;

inline std::int64_t to_ns(SteadyTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

inline bool is_retryable(ErrorCode code) {
  return code == ErrorCode::unavailable || code == ErrorCode::deadline_exceeded;
}

// A decoded frame waiting for its camera's pipeline, and whether the detector should see it.
struct PendingFrame {
  FrameRef frame;
  bool due = true;
};
inline bool not_due(const PendingFrame& p) { return !p.due; }

struct Camera : std::enable_shared_from_this<Camera> {
  // input: the edge its model stage declares for this kind of camera (ModelStage::spec);
  // scheduler_mu: the engine's scheduler mutex (Impl::mu), which guards `turn`.
  Camera(CameraConfig cfg, bool is_live, EdgeSpec input_edge, const Mutex& scheduler_mu)
      : config(std::move(cfg)), live(is_live), input(input_edge), turn(scheduler_mu) {}

  CameraConfig config;
  std::size_t model = 0;
  bool live = false;
  double interval_s = 0;  // nominal frame interval of the source, 0 if unknown
  std::int64_t frame_count = -1;  // a file's length as its header says, else -1

  std::unique_ptr<CameraStateMachine> machine;  // publishes every change on the bus

  // Hand-off from capture to the camera's first stage.
  Edge<PendingFrame> input;
  // Of them, frames due for detection (offline only): counted after the push and uncounted
  // when taken, so never more than are there.
  std::atomic<std::size_t> queued_due{0};

  // Scheduling. pending is the camera's token: whoever sets it runs the camera's next step
  // (a track-only step inline, or a place in its model's ready queue and then inference),
  // so one frame per camera is in the pipeline at a time and results stay in frame order.
  std::atomic<bool> pending{false};
  // Its place in the scheduler, guarded by the scheduler's mutex (Impl::mu).
  struct Turn {
    bool inflight = false;  // in a model stage now
    bool removed = false;
    // Fair share between queued cameras: detections so far plus this offset is the camera's
    // position (a camera added later starts level with the slowest).
    std::int64_t fair_offset = 0;
  };
  Guarded<Turn> turn;
  std::int64_t fair_position(const Mutex& scheduler_mu) const REQUIRES(scheduler_mu) {
    return static_cast<std::int64_t>(inferred.load()) + turn.get(scheduler_mu).fair_offset;
  }
  std::atomic<bool> removed_wait{false};  // remove_camera() waits for inference to finish
  Cadence cadence;  // which frames the detector sees (configured in add_camera)

  // Capture.
  Mutex lifecycle_mu;  // serialises start_capture and stop_capture
  Mutex source_mu;
  std::unique_ptr<Source> source GUARDED_BY(source_mu);
  std::thread thread GUARDED_BY(lifecycle_mu);
  std::optional<TimerService::TaskId> timer GUARDED_BY(lifecycle_mu);
  Pacer reconnect_wait;  // interruptible sleeps between reconnects
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
  std::unique_ptr<ShotCutDetector> shots;  // track.shot_cut set: a cut ends every track
  std::atomic<std::uint64_t> shot_cuts{0};
  FrameResult result;  // reused for every result of this camera
  std::uint64_t last_seq = 0;
  bool has_last_seq = false;
  std::atomic<std::uint64_t> predicted{0}, tracks_started{0};
  // People (tracking on and an object or people model): its COCO person tracks confirmed and
  // not yet removed (person_entered / person_left events). people_now: token holder only.
  bool counts_people = false;
  std::uint32_t people_now = 0;
  std::atomic<std::uint32_t> people{0};

  // Faces (faces_model set): the embedder model, what is known about each track, and the
  // faces of the result waiting in the embedder's queue. Token holder only.
  std::optional<std::size_t> faces_model;
  std::unique_ptr<TrackIdentities> identities;
  std::vector<FaceJob> face_jobs;
  // A queued camera brings a run of frames to a batch; when one of them goes to the face
  // stage, the frames of the run after it wait here, in order, and are tracked when its
  // result has been delivered. Token holder only.
  struct Detected {
    FrameRef frame;
    Detections detections;
    SteadyTime started{};  // when its inference started; none: a frame not due, only tracked
  };
  std::deque<Detected> detected_backlog;
  std::atomic<std::uint64_t> faces_detected{0}, faces_embedded{0}, identities_changed{0};

  // Per-track faces (config.best_faces): the policy and the batches it formed are the token
  // holder's; the batches come back from the workers in any order and go to
  // EngineHooks::on_faces in the order they were formed, one at a time (faces_out_mu).
  std::unique_ptr<BestFaces> best_faces;
  std::uint64_t face_batches_formed = 0;
  std::atomic<bool> faces_flushed{false};          // its input ended and every track's faces went
  std::atomic<std::uint64_t> face_batches_out{0};  // formed and not handed to on_faces yet
  Mutex faces_out_mu;
  std::map<std::uint64_t, std::unique_ptr<FaceBatch>> faces_done GUARDED_BY(faces_out_mu);  // by seq
  std::uint64_t next_faces_out GUARDED_BY(faces_out_mu) = 0;
  // Nothing of the camera's faces is left to do (always, without best_faces).
  bool faces_finished() const { return !best_faces || (faces_flushed.load() && face_batches_out.load() == 0); }

  // Metrics.
  std::atomic<std::int64_t> started_ns{0};  // when capture started (0: not yet)
  std::atomic<std::int64_t> ended_ns{0};    // when capture ended (0: not yet)
  std::atomic<std::uint64_t> decoded{0}, inferred{0}, skipped{0}, decode_errors{0}, reconnects{0};
  std::atomic<std::uint64_t> stage_errors{0};        // frames a model failed on
  std::atomic<std::uint64_t> late{0};                // live frames a remote model dropped as late
  std::atomic<std::uint64_t> fenced{0};              // results not delivered: the lease had run out
  std::atomic<std::int64_t> last_error_log_ns{0};    // rate limit of those errors' log lines
  std::shared_ptr<Histogram> age_ms;  // in the engine's metrics registry

  mutable Mutex info_mu;
  std::string last_error GUARDED_BY(info_mu);
  std::optional<Error> fatal GUARDED_BY(info_mu);  // failed for good

  // The newest delivered result, for readers outside the pipeline (the HTTP API): the token
  // holder copies each result in (its vectors keep their capacity, so steady state
  // allocates nothing) under latest_mu, a lock of this camera only; a reader copies it out.
  mutable Mutex latest_mu;
  FrameResult latest GUARDED_BY(latest_mu);  // latest.frame empty until the first result

  void set_state(CameraState s) { machine->transition(s, SteadyClock::now()); }
  CameraState state() const { return machine->state(); }
  void record_error(const Error& error) EXCLUDES(info_mu) {
    MutexLock lock(info_mu);
    last_error = error.message;
  }

};

using CameraRef = std::shared_ptr<Camera>;

// A model's batch policy, from its config (max_batch, max_delay_ms); offline, one camera
// per call at once (EngineConfig::offline).
inline BatchPolicy batch_policy_of(const ModelConfig& config, bool offline) {
  BatchPolicy policy;
  if (offline) return {1, std::chrono::microseconds(0)};
  policy.max_batch = static_cast<std::size_t>(std::max(1, config.max_batch()));
  policy.max_delay = std::chrono::microseconds(static_cast<std::int64_t>(std::max(0.0, config.max_delay_ms) * 1000));
  return policy;
}

// A model stage: one model call on a batch of cameras, each holding its token. The scheduler
// forms the batch from the stage's Batcher and calls run() on one of its workers; run()
// finishes every camera of the batch (its token goes back) or hands it on to the next stage
// before it returns. Model errors stay inside (counted per camera); only a sink or hook can
// throw out of run(), and then abandon() gives back what the worker still holds.
class ModelStage {
 public:
  virtual ~ModelStage() = default;
  virtual void run(int worker, std::vector<CameraRef>& batch) = 0;
  virtual void abandon(int worker) = 0;
  // What the stage declares (stage_spec.h): its input edge for a live or a queued camera,
  // its batch policy (the model's Batcher is built from it) and what it adds.
  virtual StageSpec spec(bool live_camera) const = 0;
  // A batch of kept faces that no frame waits for (a camera with best_faces): embeddings into
  // batch.embeddings, or the model's error into batch.status. Must not throw. Embedders only.
  virtual void embed_kept(int /*worker*/, FaceBatch& batch) {
    batch.status = Error{ErrorCode::internal, "not a face embedder"};
  }
};

// A batch of a camera's kept faces waiting for a worker.
struct FaceWork {
  CameraRef camera;
  std::unique_ptr<FaceBatch> batch;
};

// Where a camera of a stage's batch is: held by the worker, to go on to its face stage, or
// passed on (its token finished or handed over: nothing left for the stage's abandon()).
enum class Hold : char { held, to_faces, passed };

// A part of one model call that another worker, idle now, may run: a stage splits a large
// batch of file frames into parts so that one camera's run of frames uses every idle core.
// run() must not throw (the model's errors go in the part's status).
struct SharedPart {
  virtual ~SharedPart() = default;
  virtual void run(int worker) = 0;
  enum class State { queued, running, done };
  State state = State::done;  // guarded by the scheduler's mutex (Impl::mu)
};

struct Model {
  explicit Model(const Mutex& scheduler_mu) : queue(scheduler_mu) {}
  std::size_t index = 0;  // in Impl::models
  std::string name;
  bool detector = true;   // else a face embedder (its batches count faces)
  ModelConfig config;
  // Its ready queue, guarded by the scheduler's mutex (Impl::mu).
  struct Queue {
    Batcher<CameraRef> edge;         // cameras ready for this stage
    std::size_t cameras = 0;         // cameras using this model
    std::size_t inflight = 0;        // of them, in inference now
    std::size_t queued_cameras = 0;  // of them, queued (file) cameras
    std::deque<FaceWork> face_batches;  // kept faces to embed (embedders); taken before cameras
  };
  Guarded<Queue> queue;
  std::unique_ptr<ModelStage> stage;
  // Frames due for detection that a queued (file) camera brings to one of this detector's
  // batches: the batch shared out between its queued cameras (one each when they are as
  // many as max_batch), so that one file alone still fills the batch; offline, always
  // max_batch (a run must not depend on which cameras run beside it). Set with
  // queue.queued_cameras.
  bool offline = false;
  std::atomic<std::size_t> run_frames{1};
  void count_queued_camera(int delta, const Mutex& scheduler_mu) REQUIRES(scheduler_mu) {
    Queue& q = queue.get(scheduler_mu);
    q.queued_cameras = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(q.queued_cameras) + delta);
    const auto batch = static_cast<std::size_t>(std::max(1, config.max_batch()));
    run_frames = offline ? batch : std::max<std::size_t>(1, batch / std::max<std::size_t>(1, q.queued_cameras));
  }
  Detector* first_detector = nullptr;      // worker 0's instance (the gallery uses it at start)
  FaceEmbedder* first_embedder = nullptr;
  std::atomic<std::uint64_t> batches{0}, items{0};
  std::vector<std::atomic<std::uint64_t>> batch_sizes;
  std::shared_ptr<Histogram> latency_ms;  // in the engine's metrics registry
  // One model call of `count` items that started at `start`, into the counters above.
  void count_call(std::size_t count, SteadyTime start) {
    latency_ms->record(ms_between(start, std::chrono::steady_clock::now()));
    batches.fetch_add(1, std::memory_order_relaxed);
    items.fetch_add(count, std::memory_order_relaxed);
    batch_sizes[std::min(count, batch_sizes.size() - 1)].fetch_add(1, std::memory_order_relaxed);
  }
};

}  // namespace engine_internal

struct Engine::Impl {
  using Camera = engine_internal::Camera;
  using Model = engine_internal::Model;
  using CameraRef = engine_internal::CameraRef;
  using ModelStage = engine_internal::ModelStage;
  using PendingFrame = engine_internal::PendingFrame;
  using SharedPart = engine_internal::SharedPart;
  using Hold = engine_internal::Hold;
  using FaceWork = engine_internal::FaceWork;

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
  // Engine-wide histograms, in the registry (made in create(), before any thread starts).
  std::shared_ptr<Histogram> end_to_end_ms;  // capture to result delivered
  std::shared_ptr<Histogram> age_ms;         // frame age at inference start, all cameras
  EventBus bus;

  // Scheduler state.
  mutable Mutex mu;
  CondVar work_cv;  // a camera became ready, or stopping
  CondVar idle_cv;  // a camera left inference, or a camera ended
  bool stopping GUARDED_BY(mu) = false;
  std::size_t idle_workers GUARDED_BY(mu) = 0;  // workers not running a batch or a part
  std::deque<SharedPart*> shared_parts GUARDED_BY(mu);  // parts waiting for an idle worker
  CondVar part_done_cv;  // a shared part finished
  std::vector<std::shared_ptr<Camera>> cameras GUARDED_BY(mu);
  std::optional<Error> first_error GUARDED_BY(mu);
  bool stop_requested GUARDED_BY(mu) = false;
  bool started GUARDED_BY(mu) = false;
  bool stopped GUARDED_BY(mu) = false;
  std::vector<std::thread> workers;  // started by start(), joined by run() on the main thread
  Gallery gallery;                       // immutable once the engine is created
  std::unique_ptr<AnonymousClusters> clusters;  // shared by all cameras (own mutex)

  // --- scheduler (scheduler.cpp) ----------------------------------------------------------

  bool has_frame(Camera& cam) const { return cam.input.has_item(); }
  // The camera's next step can run: a frame waits and, offline, a queued camera's whole run
  // does (Model::run_frames frames due, or as many frames as its queue holds, or the rest of
  // its file), so what a run holds does not depend on when the decoder delivered it.
  bool ready(const Camera& cam) const {
    if (!cam.input.has_item()) return false;
    if (cam.live || !config.offline) return true;
    return cam.queued_due.load() >= models[cam.model]->run_frames.load() || cam.input.full() || cam.ended.load();
  }
  // Runs the camera's pipeline as far as it goes without the detector, on the calling thread
  // (capture, timer or worker): takes the token, runs track-only steps for frames not due for
  // detection, in order, then either hands the token to the model's ready queue (a due frame
  // waits: ready()) or gives it back. A thread that finds the token taken returns at once: the holder
  // will see the new frame.
  void pump(const CameraRef& cam) EXCLUDES(mu);
  // A camera's inference finished in `model`: give its token back and let it go on.
  void finish(const CameraRef& cam, Model& model) EXCLUDES(mu);
  // A camera of a stage's batch goes on: to its face stage (to_faces) or its token back.
  void pass_on(const CameraRef& cam, Model& model, Hold& hold) EXCLUDES(mu);
  // A stage's abandon(): a camera not passed on yet loses its waiting result, faces and
  // detected backlog, and its token goes back.
  void drop(const CameraRef& cam, Model& model, Hold& hold) EXCLUDES(mu);
  void worker_loop(int w) EXCLUDES(mu);
  // Runs a shared part or a batch of kept faces if one waits (mu let go while it runs, held
  // again on return); true if it ran one.
  bool run_waiting_work(int w) REQUIRES(mu);
  // Runs parts[0] on this worker and offers the others to idle workers; runs itself any that
  // no worker has taken by the time it gets to them. Returns when every part has run.
  void run_shared(int worker, std::span<SharedPart* const> parts) EXCLUDES(mu);
  // Fair share between a model's queued cameras (see scheduler.cpp). Caller holds mu.
  struct FairPlan {
    bool go = true;                 // a batch may close now...
    std::int64_t max_position = 0;  // ...of queued cameras at or below this position
    SteadyTime wait_until{};        // else wait for the slowest camera until then
  };
  FairPlan fair_plan(const Model& model, SteadyTime now) const REQUIRES(mu);
  std::int64_t slowest_queued_position(std::size_t model) const REQUIRES(mu);
  // Hands a result to the sinks and the result hook. A sink that fails stops the run.
  void deliver(Camera& cam, const FrameResult& result) EXCLUDES(mu);
  void fail(const Error& error) EXCLUDES(mu);

  // --- stages (detect_stage.cpp, embed_stage.cpp) -------------------------------------------
  // Each model is a stage with one model instance per worker.
  class DetectorStage;
  class EmbedderStage;
  std::unique_ptr<ModelStage> make_detector_stage(Model& model, std::vector<std::unique_ptr<Detector>> detectors);
  std::unique_ptr<ModelStage> make_embedder_stage(Model& model, std::vector<std::unique_ptr<FaceEmbedder>> embedders);
  // Frame steps since the camera's previous result (frames replaced or skipped count); 1 after
  // a reconnect restarts the source's numbering.
  static int frame_steps(Camera& cam, const Frame& frame);
  // A frame of a tracked camera that skips the detector: its tracks are predicted. Token held.
  void track_only(Camera& cam, FrameRef frame);
  // A detected frame through the camera's tracker into its result (token held); delivered,
  // unless its faces are to be embedded first (returns true: the result waits in the face
  // stage). `detector`: the model that detected it.
  bool track_and_deliver(Camera& cam, const Model& detector, FrameRef frame, const Detections& detections,
                         SteadyTime start);
  // Tracks the camera's detected backlog, in order, after the result it waited for was
  // delivered; true when one of them went to the face stage (the rest wait again).
  bool track_backlog(Camera& cam);
  // Track changes go on the bus (they are rare: per track, not per frame).
  void publish_track_events(Camera& cam, const FrameResult& r);
  // A detected frame whose faces are to be embedded: the camera leaves the detector and
  // waits in its embedder's ready queue, still holding its token (results stay in order).
  void to_face_stage(const CameraRef& cam, Model& from) EXCLUDES(mu);
  void publish_identities(Camera& cam, const FrameResult& r, const std::vector<std::size_t>& changed);
  // A camera with best_faces (token held): the kept faces of its ended tracks in batches of the
  // embedder's max_batch (all: the rest too), each answered by EngineHooks::replay_faces or
  // queued for a worker.
  void queue_best_faces(Camera& cam, bool all) EXCLUDES(mu);
  // The camera's input ended (token held): its open tracks end and their faces go.
  void flush_best_faces(Camera& cam) EXCLUDES(mu);
  // The first batch of kept faces waiting in any embedder (empty when none).
  FaceWork take_face_work() REQUIRES(mu);
  // Embeds a batch of kept faces on this worker and hands it on (deliver_faces).
  void run_face_work(int worker, FaceWork& work) EXCLUDES(mu);
  // A batch done (embedded, failed or replayed): to on_faces with those before it, in order.
  void deliver_faces(Camera& cam, std::unique_ptr<FaceBatch> batch) EXCLUDES(mu);
  // Counts a model's failure on one of the camera's frames and logs it at most once a
  // second per camera, so a model failing on every frame cannot flood the log.
  static void record_stage_error(Camera& cam, const Model& model, const Error& error, std::uint64_t seq);

  // --- capture (capture.cpp) ----------------------------------------------------------------
  // Hands a decoded frame to the scheduler according to the camera's kind.
  // Frames not due for detection go on only when the camera tracks (to get predicted tracks).
  void hand_off(const CameraRef& cam, FrameRef frame);
  void end_capture(const CameraRef& cam, CameraState final_state, std::optional<Error> fatal);
  // Reader thread of a file, stream or unpaced synthetic camera.
  void capture_loop(const CameraRef& cam);
  // One tick of a live synthetic camera, on a shared timer thread.
  std::optional<SteadyTime> synthetic_tick(const CameraRef& cam, SteadyTime due);
  void start_capture(const CameraRef& cam) EXCLUDES(mu);
  void stop_capture(Camera& cam) EXCLUDES(mu);

  // --- metrics (engine_metrics.cpp) ----------------------------------------------------------
  // A camera's and a model's numbers in the registry: the atomics the hot path already
  // updates are read at scrape time, the histograms live in the registry.
  void register_camera_metrics(const CameraRef& cam);
  void register_model_metrics(Model& model);

  // --- cameras (engine.cpp) ---------------------------------------------------------------
  // The camera's face stage from its config (its tracker made first). Errors: a faces_model
  // that is no face_embedder; best faces without tracking or an embedder.
  Status set_up_faces(Camera& cam);
  // The camera's state machine, which publishes every change on the bus.
  std::unique_ptr<CameraStateMachine> make_state_machine(Camera& cam);

  // --- set-up (engine_setup.cpp) -----------------------------------------------------------
  Status build_models();   // models, their metrics, and one detector or embedder per worker
  Status build_gallery();  // identity.gallery, if configured
  Status open_sinks();

  // --- status line (engine_metrics.cpp) ----------------------------------------------------
  struct StatusLine {
    double decoded = 0, inferred = 0, cpu = 0;
    SteadyTime at{};
  };
  void log_status(StatusLine& last) REQUIRES(mu);
};

}  // namespace vigil
