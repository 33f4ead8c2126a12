// EngineConfig: everything `vigil run` needs, as typed settings with defaults. The cli
// module fills it from YAML and validates it; the pipeline trusts it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vigil/sink/jsonl_sink.h"
#include "vigil/source/source_config.h"
#include "vigil/identity/identity.h"
#include "vigil/track/byte_tracker.h"
#include "vigil/pipeline/face_selector.h"
#include "vigil/pipeline/model_kinds.h"

namespace vigil {

struct ModelConfig {
  // A kind of the table in pipeline/model_kinds.h: "blazeface", "scrfd" (faces), "yolo",
  // "yolo_pose" (objects, people), "face_embedder", or one registered since.
  std::string kind = "blazeface";
  ModelSettings settings = find_model_kind("blazeface")->defaults;
  double max_delay_ms = 2.0;  // a batch closes this long after its first member

  // A config of that kind with its defaults (blazeface's for an unknown kind).
  static ModelConfig of_kind(const std::string& kind) {
    ModelConfig m;
    m.kind = kind;
    if (const ModelKind* k = find_model_kind(kind)) {
      m.settings = k->defaults;
      m.max_delay_ms = k->max_delay_ms;
    }
    return m;
  }
  ModelRole role() const {
    const ModelKind* k = find_model_kind(kind);
    return k ? k->role : ModelRole::object_detector;
  }
  bool is_detector() const { return role() != ModelRole::face_embedder; }
  // Detectors whose keypoints align faces for an embedder.
  bool finds_faces() const { return role() == ModelRole::face_detector; }
  const std::string& model_path() const { return settings.model_path; }
  BackendKind backend() const { return settings.backend; }
  // Intra-op threads of each instance of this model (the engine sets them from the budget).
  void set_threads(int threads) { settings.threads = threads; }
  Precision precision() const { return settings.precision; }
  int max_batch() const { return settings.max_batch; }
};

struct DetectConfig {
  std::string model;  // key into EngineConfig::models
  int every = 1;      // run detection on every N-th frame of the camera...
  double fps = 0;     // ...or at this rate (frames per second), when > 0
};

// Which frames of a tracked camera reach the sinks.
enum class TrackEmit {
  detections,   // frames the detector ran on (tracks and track ids included)
  every_frame,  // every decoded frame; frames in between carry predicted tracks
};

struct TrackConfig {
  bool enabled = true;  // on by default for every camera that detects
  TrackEmit emit = TrackEmit::detections;
  // Mean luma change (0-255, track/shot_cut.h) between two detected frames that ends every
  // track (an edit cut in a recording); 0: off.
  double shot_cut = 0;
  // A frame's detections that belong to no confirmed track yet (a tentative track's first
  // frames, or too low a score to start one) are left out of its result unless this is set:
  // what a camera delivers is tracked.
  bool keep_unconfirmed = false;
  TrackerConfig tracker;
};

struct CameraConfig {
  std::string id;
  SourceConfig source;
  DetectConfig detect;
  TrackConfig track;
  std::string faces_model;  // the face_embedder model for this camera's faces (empty: none)
  // How the faces are chosen. Unset: live identification (a tracked face is embedded when its
  // track is new or its quality improves, and its frame waits for it). Set (tracking on):
  // each track's best faces as the selector keeps them, embedded in batches across tracks
  // when the tracks end (pipeline/best_faces.h); the frames do not wait, and the embedded
  // faces go to EngineHooks::on_faces, not into the frames' results.
  std::optional<FaceSelectorConfig> best_faces;
  // Set by a cluster's ingest node for a camera it holds through a lease
  // (cluster/camera_leases.h): the steady-clock time (ns since its epoch) until which the
  // lease is known to be held. A result made after it is not delivered (counted in
  // CameraStatus::frames_fenced): an owner that was paused past its lease cannot write after
  // another node took the camera. Null: not leased (`vigil run`).
  std::shared_ptr<const std::atomic<std::int64_t>> lease_until;
};

struct SinkConfig {
  std::string type = "jsonl";
  JsonlSinkConfig jsonl;
};

// One number sizes every pool: inference workers, the inference library's intra-op
// threads, timer threads. With enforce, the process's measured CPU stays at or under it.
struct CpuBudgetConfig {
  double cores = 0;      // 0: all cores of the machine
  bool enforce = false;
};

// The HTTP API (`http:` in the config); `vigil run` serves it when host is set. Plain data
// here: the http module reads it.
struct HttpConfig {
  std::string host;  // empty: no API
  int port = 8080;
  std::string token;  // bearer token for POST/DELETE; required to listen beyond loopback
  int threads = 2;
  int max_connections = 1024;
  int idle_timeout_s = 30;
  int max_body_bytes = 64 * 1024;
  bool snapshot_cache = true;  // false: encode per request (benchmark baseline)
};

// The event store (`store:` in the config; off without it): sink/event_store.h.
struct StoreConfig {
  std::string path;  // empty: no store; the section's default is out/vigil.db
  double max_age_days = 7;
  double max_mb = 1024;
  int queue = 10000;
};

// Scale-out over Redis Streams (`cluster:` in the config), read by `vigil ingest` and `vigil
// worker` (cluster/remote_backend.h, cluster/worker.h); `vigil run` ignores it. Every node and
// worker of a cluster takes the same values.
struct ClusterConfig {
  std::string prefix = "vigil";  // key prefix: PREFIX:{MODEL.SHARD}:req, PREFIX:{NODE}:reply, ...
  int shards = 1;                // request streams per model
  std::int64_t max_len = 100000; // request and reply streams are trimmed to about this many entries
  int reply_timeout_ms = 10000;  // a file frame's request not answered by then is sent again
  int max_age_ms = 1000;         // a live frame's request older than this is dropped by the worker
  int claim_idle_ms = 5000;      // a request pending this long (its worker died) is taken over
  int max_deliveries = 3;        // then it goes to the dead-letter stream
  int block_ms = 100;            // a worker's XREADGROUP BLOCK
  int lease_ms = 5000;           // an ingest node's hold on a camera; a dead node's cameras move after it
};

// Why a camera's source cannot run offline, or empty when it can: offline takes sources
// that end and lose nothing (files, unpaced synthetic sources), not live ones or streams.
inline std::string offline_refusal(const SourceConfig& source) {
  if (source.type == SourceType::stream) return "offline mode takes files, not streams";
  if (source.live) return "offline mode takes sources that are not live (a file not paced in real time)";
  return {};
}

struct EngineConfig {
  std::vector<CameraConfig> cameras;
  std::map<std::string, ModelConfig> models;
  std::vector<SinkConfig> sinks;
  CpuBudgetConfig cpu_budget;
  int workers = 0;              // inference workers; 0: from the budget
  int inference_threads = 0;    // intra-op threads per model call; 0: from the budget
  IdentityConfig identity;       // thresholds and per-track embedding limits
  std::string gallery;           // DIR/<name>/*.jpg, embedded at start (empty: anonymous ids only)
  double status_interval_s = 5;  // one status line this often; 0: never
  std::string log_level = "info";
  HttpConfig http;
  StoreConfig store;
  ClusterConfig cluster;
  // Offline: every camera is a file, read whole, and its results do not depend on timing.
  // Each model call is one camera's run of exactly max_batch frames due for detection (fewer
  // at its end, or when a run spans more frames than the camera's queue holds), whenever
  // the decoder delivers them; one camera per call of each stage. What the harvest needs
  // to replay a run bit for bit.
  bool offline = false;
};

}  // namespace vigil
