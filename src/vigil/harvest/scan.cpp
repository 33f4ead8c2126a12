#include "vigil/harvest/scan.h"

#include <filesystem>
#include <string>
#include <utility>

namespace vigil {

namespace {

constexpr const char* kDetector = "detector";

// One file camera, detected and tracked as the harvest's options say.
EngineConfig scan_config(const HarvestOptions& options, std::size_t input, int workers, double cores) {
  EngineConfig config;
  config.offline = true;
  config.workers = workers;
  config.inference_threads = 1;
  config.cpu_budget = {cores, true};
  config.status_interval_s = 0;
  config.models[kDetector] = options.detector;
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
  config.cameras.push_back(std::move(camera));
  return config;
}

}  // namespace

Result<std::unique_ptr<InputScan>> InputScan::start(const HarvestOptions& options, std::size_t input, int workers, double cores,
                                                    DetectionJournal& journal) {
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

// On an engine worker: a copy of the result into a recycled one (its vectors keep their
// capacity), queued for the harvest's thread.
void InputScan::hand_over(const FrameResult& result) {
  std::optional<FrameResult> slot = recycled_.try_pop();
  if (!slot) slot.emplace();
  *slot = result;
  results_.push(std::move(*slot));
}

bool InputScan::next(FrameResult& result) {
  std::optional<FrameResult> item = results_.pop();
  if (!item) return false;
  std::swap(result, *item);
  item->frame.reset();  // the picture goes back to its pool
  recycled_.push(std::move(*item));
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
