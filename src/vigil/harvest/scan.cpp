#include "vigil/harvest/scan.h"

#include <filesystem>
#include <string>
#include <utility>

namespace vigil {

namespace {

constexpr const char* kDetector = "detector";
constexpr const char* kEmbedder = "embedder";

// One file camera, detected and tracked as the harvest's options say.
EngineConfig scan_config(const HarvestOptions& options, std::size_t input, int workers, double cores) {
  EngineConfig config;
  config.offline = true;
  config.workers = workers;
  config.inference_threads = 1;
  config.cpu_budget = {cores, true};
  config.status_interval_s = 0;
  config.models[kDetector] = options.detector;
  config.models[kEmbedder] = options.embedder;
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
  config.cameras.push_back(std::move(camera));
  return config;
}

// The kept faces' harvest-wide ids, for the journal.
void face_ids(const FaceBatch& batch, std::uint64_t base, std::vector<std::uint64_t>& ids) {
  ids.clear();
  for (const KeptFace& f : batch.faces) ids.push_back(base + f.candidate.face_id);
}

}  // namespace

Result<std::unique_ptr<InputScan>> InputScan::start(const HarvestOptions& options, std::size_t input, int workers, double cores,
                                                    Journals journals) {
  DetectionJournal& journal = journals.detections;
  std::unique_ptr<InputScan> scan(new InputScan(journal, input, options.inputs[input]));
  EngineHooks hooks;
  InputScan* self = scan.get();
  hooks.on_result = [self](const FrameResult& result) { self->hand_over(result); };
  hooks.replay_detections = [&journal, input](const std::string&, std::span<const std::uint64_t> seqs, std::vector<Detections>& out) {
    return journal.replay(input, seqs, out);
  };
  hooks.on_detected = [&journal, input](const std::string&, std::span<const std::uint64_t> seqs, std::span<const Detections> found) {
    journal.record(input, seqs, found);
  };
  EmbeddingJournal& embeddings = journals.embeddings;
  const std::uint64_t base = journals.face_base;
  hooks.replay_faces = [&embeddings, base](const std::string&, FaceBatch& batch) {
    std::vector<std::uint64_t> ids;
    face_ids(batch, base, ids);
    return embeddings.replay(ids, batch.embeddings, batch.status);
  };
  hooks.on_faces = [self, &embeddings, base](const std::string&, FaceBatch& batch) {
    if (!batch.replayed && batch.status.ok()) {
      std::vector<std::uint64_t> ids;
      face_ids(batch, base, ids);
      embeddings.record(ids, batch.embeddings);
    }
    self->hand_over(batch);
  };
  auto engine = Engine::create(scan_config(options, input, workers, cores), std::move(hooks));
  if (!engine.ok()) return engine.error();
  scan->engine_ = std::move(engine).value();
  const EngineStatus status = scan->engine_->status();
  if (!status.cameras.empty()) scan->frame_count_ = status.cameras.front().frame_count;
  scan->runner_ = std::thread([self] {
    self->run_status_ = self->engine_->run(std::nullopt);
    self->results_.close();
  });
  return scan;
}

InputScan::~InputScan() {
  stop();
  if (runner_.joinable()) runner_.join();
}

ScanItem InputScan::recycled_item() {
  std::optional<ScanItem> slot = recycled_.try_pop();
  return slot ? std::move(*slot) : ScanItem{};
}

// On an engine worker: a copy of the result into a recycled item (its vectors keep their
// capacity), queued for the harvest's thread.
void InputScan::hand_over(const FrameResult& result) {
  ScanItem item = recycled_item();
  item.is_faces = false;
  item.result = result;
  results_.push(std::move(item));
}

// On an engine worker or the camera's token holder: the batch's faces and embeddings moved
// into a recycled item.
void InputScan::hand_over(FaceBatch& faces) {
  ScanItem item = recycled_item();
  item.is_faces = true;
  item.faces.seq = faces.seq;
  item.faces.faces.swap(faces.faces);
  item.faces.embeddings.swap(faces.embeddings);
  item.faces.status = faces.status;
  item.faces.replayed = faces.replayed;
  results_.push(std::move(item));
}

bool InputScan::next(ScanItem& item) {
  std::optional<ScanItem> next = results_.pop();
  if (!next) return false;
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
  if (runner_.joinable()) runner_.join();
  const EngineStatus engine_status = engine_->status();
  if (!engine_status.cameras.empty()) status = engine_status.cameras.front();
  VIGIL_RETURN_IF_ERROR(run_status_);
  if (status.stage_errors > 0) {
    return Error{ErrorCode::internal, path_ + ": the detector failed on " + std::to_string(status.stage_errors) +
                                          " frames (" + status.last_error + ")"};
  }
  return journal_.finish_input(input_);
}

}  // namespace vigil
