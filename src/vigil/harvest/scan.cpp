#include "vigil/harvest/scan.h"

#include <filesystem>
#include <string>
#include <utility>

namespace vigil {

namespace {

constexpr const char* kDetector = "detector";
constexpr const char* kEmbedder = "embedder";

// The engine: the harvest's models, offline, under its budget, no camera yet.
EngineConfig scan_config(const HarvestOptions& options, int workers, double cores) {
  EngineConfig config;
  config.offline = true;
  config.workers = workers;
  config.inference_threads = 1;
  config.cpu_budget = {cores, true};
  config.status_interval_s = 0;
  config.models[kDetector] = options.detector;
  config.models[kEmbedder] = options.embedder;
  return config;
}

// One input as a file camera, detected, tracked and its faces selected as the options say.
CameraConfig input_camera(const HarvestOptions& options, std::size_t input) {
  CameraConfig camera;
  camera.id = std::filesystem::path(options.inputs[input]).filename().string();  // what the engine's log lines name
  camera.source.type = SourceType::file;
  camera.source.url = options.inputs[input];
  camera.source.live = false;
  camera.source.decoder_threads = 1;
  camera.source.stride = options.stride;
  camera.detect.model = kDetector;
  camera.track.enabled = true;
  camera.track.emit = TrackEmit::detections;
  camera.track.shot_cut = options.shot_cut_threshold;
  camera.track.tracker.lost_frames = options.track_buffer;
  camera.faces_model = kEmbedder;
  camera.best_faces = options.select;
  return camera;
}

// The kept faces' harvest-wide ids, for the journal.
void face_ids(const FaceBatch& batch, std::uint64_t base, std::vector<std::uint64_t>& ids) {
  ids.clear();
  for (const KeptFace& f : batch.faces) ids.push_back(base + f.candidate.face_id);
}

}  // namespace

Result<std::unique_ptr<InputScan>> InputScan::start(const HarvestOptions& options, int workers, double cores,
                                                    DetectionJournal& detections, EmbeddingJournal& embeddings) {
  std::unique_ptr<InputScan> scan(new InputScan(options, detections));
  EngineHooks hooks;
  InputScan* self = scan.get();
  hooks.on_result = [self](const FrameResult& result) { self->hand_over(result); };
  hooks.replay_detections = [self, &detections](const std::string&, std::span<const std::uint64_t> seqs, std::vector<Detections>& out) {
    return detections.replay(self->input_.load(), seqs, out);
  };
  hooks.on_detected = [self, &detections](const std::string&, std::span<const std::uint64_t> seqs, std::span<const Detections> found) {
    detections.record(self->input_.load(), seqs, found);
  };
  hooks.replay_faces = [self, &embeddings](const std::string&, FaceBatch& batch) {
    std::vector<std::uint64_t> ids;
    face_ids(batch, self->face_base_.load(), ids);
    return embeddings.replay(ids, batch.embeddings, batch.status);
  };
  hooks.on_faces = [self, &embeddings](const std::string&, FaceBatch& batch) {
    if (!batch.replayed && batch.status.ok()) {
      std::vector<std::uint64_t> ids;
      face_ids(batch, self->face_base_.load(), ids);
      embeddings.record(ids, batch.embeddings);
    }
    self->hand_over(batch);
  };
  auto engine = Engine::create(scan_config(options, workers, cores), std::move(hooks));
  if (!engine.ok()) return engine.error();
  scan->engine_ = std::move(engine).value();
  scan->engine_->start();
  return scan;
}

InputScan::~InputScan() {
  stop();
  if (waiter_.joinable()) waiter_.join();
}

Status InputScan::begin(std::size_t input, std::uint64_t face_base) {
  input_ = input;
  face_base_ = face_base;
  const CameraConfig camera = input_camera(options_, input);
  VIGIL_RETURN_IF_ERROR(engine_->add_camera(camera));
  camera_ = camera.id;
  frame_count_ = -1;
  for (const CameraStatus& c : engine_->status().cameras) {
    if (c.id == camera_) frame_count_ = c.frame_count;
  }
  waiter_ = std::thread([this] {
    ended_ = engine_->finish_camera(camera_);
    ScanItem end;
    end.end = true;
    results_.push(std::move(end));
  });
  return {};
}

ScanItem InputScan::recycled_item() {
  std::optional<ScanItem> slot = recycled_.try_pop();
  return slot ? std::move(*slot) : ScanItem{};
}

// On an engine worker: a copy of the result into a recycled item (its vectors keep their
// capacity), queued for the harvest's thread.
void InputScan::hand_over(const FrameResult& result) {
  ScanItem item = recycled_item();
  item.end = false;
  item.is_faces = false;
  item.result = result;
  results_.push(std::move(item));
}

// On an engine worker or the camera's token holder: the batch's faces and embeddings moved
// into a recycled item.
void InputScan::hand_over(FaceBatch& faces) {
  ScanItem item = recycled_item();
  item.end = false;
  item.is_faces = true;
  std::swap(item.faces, faces);
  results_.push(std::move(item));
}

bool InputScan::next(ScanItem& item) {
  std::optional<ScanItem> next = results_.pop();
  if (!next || next->end) return false;
  std::swap(item, *next);
  next->result.frame.reset();  // the picture goes back to its pool
  next->faces.faces.clear();
  recycled_.push(std::move(*next));
  return true;
}

void InputScan::stop() {
  if (engine_) engine_->request_stop();
  results_.close();
}

Status InputScan::finish(CameraStatus& status) {
  if (waiter_.joinable()) waiter_.join();
  if (!ended_.ok()) return ended_.error();
  status = *ended_;
  if (status.stage_errors > 0) {
    return Error{ErrorCode::internal, options_.inputs[input_.load()] + ": the models failed on " + std::to_string(status.stage_errors) +
                                          " frames or batches of faces (" + status.last_error + ")"};
  }
  return journal_.finish_input(input_.load());
}

}  // namespace vigil
