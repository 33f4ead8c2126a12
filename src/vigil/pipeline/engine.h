// Engine: the live engine. Owns cameras, models, workers and sinks.
//
//   capture (per camera)                     stages (shared worker pool, one CPU budget)
//   ─────────────────────                    ─────────────────────────────────────────────
//   file/stream: a reader thread   ─┐        the camera's input edge, as its detector stage
//   live synthetic: timer tasks    ─┴─▶      declares it (live: newest-wins 1, file: queue 4)
//        ─▶ detect (Batcher across cameras) ─▶ track (inline) ─▶ embed (Batcher across
//           cameras, faces only) ─▶ deliver to sinks and the bus, in frame order.
//   Engine::pipeline(camera) returns the chain as built (stage_spec.h); `vigil run` logs it.
//   W workers (sized from cpu_budget) serve every model stage's batcher; a camera holds one
//   token, so one frame per camera is in the stages at a time.
//
// Invariants:
//   - at most one frame per camera is in inference at a time (per-camera order holds);
//   - capture never waits for inference on a live camera; a file camera's frames are all
//     processed, in order, none dropped;
//   - no thread per camera on the inference side; live synthetic cameras share timer threads;
//   - every pool parks when idle;
//   - per-frame counters are atomics, aggregated when status() is read.
// Threading: every public method may be called from any thread.
//
// Example config: see examples/demo.yaml and bench/configs/.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vigil/core/camera_state.h"
#include "vigil/core/event_bus.h"
#include "vigil/core/metrics.h"
#include "vigil/core/status.h"
#include "vigil/pipeline/best_faces.h"
#include "vigil/pipeline/engine_config.h"
#include "vigil/pipeline/stage_spec.h"
#include "vigil/sink/sink.h"
#include "vigil/vision/detector.h"
#include "vigil/vision/face_embedder.h"

namespace vigil {


struct CameraStatus {
  std::string id;
  CameraState state = CameraState::connecting;
  bool live = false;                    // newest-wins edge rather than a queue
  SourceType source_type = SourceType::file;
  std::string source_url;               // as configured (may hold credentials: redact before showing)
  std::int64_t frame_count = -1;        // a file's length as its header says, else -1
  std::uint64_t frames_decoded = 0;     // frames the source produced
  std::uint64_t frames_inferred = 0;    // frames that went through the detector
  std::uint64_t frames_replaced = 0;    // due frames replaced on the newest-wins edge before inference
  std::uint64_t frames_skipped = 0;     // frames not due for detection (detect.every/fps)
  std::uint64_t frames_predicted = 0;   // of them, frames that got predicted tracks (tracking on)
  std::uint64_t tracks_started = 0;     // tracks confirmed so far (the last track id)
  bool counts_people = false;           // tracking with an object or people model: people are counted
  std::uint64_t people = 0;             // of them, people tracks on the camera now (entered, not left)
  std::uint64_t shot_cuts = 0;          // shot cuts seen (track.shot_cut), each ending every track
  std::uint64_t faces_detected = 0;     // detections on frames of a camera with a face stage
  std::uint64_t faces_embedded = 0;     // of them, faces the embedder ran on
  std::uint64_t identities_changed = 0; // tracks that got (or changed) an identity
  std::uint64_t decode_errors = 0;      // corrupt frames and read errors
  std::uint64_t stage_errors = 0;       // frames a model failed on (dropped; the camera goes on)
  std::uint64_t frames_late = 0;        // live frames dropped as late: a remote worker's max_age_ms, or no reply in time
  std::uint64_t frames_fenced = 0;      // results not delivered: the camera's lease had run out (cluster)
  std::uint64_t reconnects = 0;
  double decode_fps = 0;                // frames decoded per second while the camera ran
  double infer_fps = 0;                 // frames inferred per second while the camera ran
  double age_p50_ms = 0;                // frame age when its inference started
  double age_p99_ms = 0;
  std::string last_error;
  std::vector<CameraState> history;     // states entered, oldest first (last 32)
};

struct ModelStatus {
  std::string name;
  std::uint64_t batches = 0;
  std::uint64_t items = 0;
  std::vector<std::uint64_t> batch_sizes;  // batch_sizes[n]: batches of n items
  double latency_p50_ms = 0;               // model call (pre + infer + post) per batch
  double latency_p99_ms = 0;
};

struct EngineStatus {
  std::vector<CameraStatus> cameras;
  std::vector<ModelStatus> models;
  double age_p50_ms = 0;         // frame age at inference start, all cameras
  double age_p99_ms = 0;
  double end_to_end_p50_ms = 0;  // capture to result written
  double end_to_end_p99_ms = 0;
  int workers = 0;
  int inference_threads = 0;
  int timer_threads = 0;
};

// A camera as a reader outside the pipeline sees it: its state and its newest result.
struct CameraLatest {
  CameraState state = CameraState::connecting;
  std::shared_ptr<const FrameResult> result;  // null until the first result; keeps its frame alive
};

// Test and benchmark hooks; production leaves them empty.
struct EngineHooks {
  // Makes one detector instance for a model (each worker gets its own).
  std::function<Result<std::unique_ptr<Detector>>(const std::string& name, const ModelConfig&)> make_detector;
  // Makes one face embedder instance for a model (each worker gets its own).
  std::function<Result<std::unique_ptr<FaceEmbedder>>(const std::string& name, const ModelConfig&)> make_embedder;
  // Sees every result after the sinks, on the worker thread.
  std::function<void(const FrameResult&)> on_result;
  // Offline only (EngineConfig::offline), for a journal that lets a resumed run replay what
  // the model found: asked with a camera's run (the sequence numbers of its frames due for
  // detection, in order) before it goes to the model; true, with one Detections per frame
  // in `out`, answers the whole run and the model is not called. On worker threads, one
  // call per camera at a time.
  std::function<bool(const std::string& camera, std::span<const std::uint64_t> seqs, std::vector<Detections>& out)>
      replay_detections;
  // Offline only: sees every run the model detected (not those replayed), before tracking.
  std::function<void(const std::string& camera, std::span<const std::uint64_t> seqs, std::span<const Detections> found)>
      on_detected;
  // Cameras with best_faces (engine_config.h), for the same journal: asked with each batch of
  // kept faces, in the order they are formed, before it goes to the model; true, with one
  // embedding per face in batch.embeddings, answers it and the model is not called. On the
  // camera's token holder (a worker or its capture thread), one call per camera at a time.
  std::function<bool(const std::string& camera, FaceBatch& batch)> replay_faces;
  // Every batch of a camera's kept faces, embedded (or failed: batch.status) or replayed, in
  // the order the batches were formed, on a worker or the token holder, one call per camera
  // at a time; the faces and embeddings may be taken. Without it, the batches go nowhere.
  std::function<void(const std::string& camera, FaceBatch& batch)> on_faces;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> create(const EngineConfig& config, EngineHooks hooks = {});
  ~Engine();  // stops if still running

  // Adds a camera while the engine runs (or before start). Files and synthetic cameras are
  // opened now, so a bad path fails here; streams connect in the background.
  Status add_camera(const CameraConfig& camera);
  // Stops a camera: its capture ends, in-flight work finishes, then its decoder is released.
  Status remove_camera(const std::string& id);
  // Waits until a camera's source has ended and every one of its results (and kept faces)
  // was delivered, then removes it: what a caller that runs files one after another on a
  // started engine (the harvest) calls instead of run(). Returns the camera's last status;
  // errors: its source's failure for good (named), the engine's first error, cancelled when
  // a stop was requested first, not_found.
  Result<CameraStatus> finish_camera(const std::string& id);
  // Whether finish_camera(id) would return at once: the camera's source has ended and every
  // one of its results was delivered. False for an unknown camera, and once a stop was requested
  // (every camera then ends, none was read to its end). Never blocks.
  bool camera_finished(const std::string& id) const;

  void start();
  // Blocks until stop is requested, duration_s passes, or every camera has ended (and all
  // their frames are processed). Then stops: drains in-flight batches, flushes sinks.
  // Returns the first camera or sink error of a camera that failed for good.
  Status run(std::optional<double> duration_s);
  void request_stop();

  EngineStatus status() const;
  // One camera's state and a copy of its newest delivered result (what the snapshot and
  // detections endpoints serve); nullopt for an unknown id. Takes only the camera's own lock.
  std::optional<CameraLatest> latest(const std::string& camera_id) const;
  // The camera's chain of stages as they were built from the stages' declarations
  // (stage_spec.h): capture, detect, track, embed, deliver, with their edges and batching.
  Result<std::vector<StageSpec>> pipeline(const std::string& camera_id) const;
  // Camera state changes and track events, in order; subscribe or read from any thread.
  EventBus& events();
  // Every counter, gauge and histogram of the engine (labels camera and model), read on demand.
  const MetricsRegistry& metrics() const;
  // Clears the latency and age histograms (counters keep counting): benchmarks call it
  // when their measured window starts.
  void reset_histograms();

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil
