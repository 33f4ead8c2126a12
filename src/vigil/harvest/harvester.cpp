#include "vigil/harvest/harvester.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <iterator>
#include <memory>

#include "vigil/concurrency/cpu_governor.h"
#include "vigil/core/atomic_file.h"
#include "vigil/core/process_stats.h"
#include "vigil/harvest/checkpoint.h"
#include "vigil/harvest/face_tracks.h"
#include "vigil/harvest/journal.h"
#include "vigil/harvest/journaled_models.h"
#include "vigil/harvest/model_pool.h"
#include "vigil/harvest/outputs.h"
#include "vigil/harvest/scan.h"
#include "vigil/infer/backend.h"
#include "vigil/pipeline/face_stage.h"
#include "vigil/pipeline/model_factory.h"
#include "vigil/source/source.h"

namespace vigil {

namespace {

// The harvest's flow: each input decoded, sampled, detected and tracked by the engine in
// offline mode (InputScan, its detector behind the journal), each tracked frame's faces
// selected (FaceTracks), the chosen faces embedded in batches through the journal
// (JournaledModels) and taken back in submission order; then the outputs (HarvestOutputs).
class Run {
 public:
  Run(const HarvestOptions& options, ModelPool& pool, const HarvestProgressFn& progress, int workers, double cores)
      : options_(options),
        progress_fn_(progress),
        models_(pool, pool.embedder().dim()),
        faces_(options.select, pool.embedder().face_template(), pool.embedder().dim()),
        workers_(workers),
        cores_(cores),
        max_pending_(2 * pool.workers() + 1),
        embed_batch_(static_cast<std::size_t>(std::max(1, pool.embedder().max_batch()))) {}
  // Calls still with the pool (after an error) finish before their memory goes.
  ~Run() {
    for (const auto& call : pending_) models_.abandon(*call);
  }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  // The journal to append to, and the records a killed run left (they must outlive this).
  void resume_from(Journal& journal, const std::vector<std::string>& records) {
    detections_.resume_from(journal, records);
    models_.resume_from(journal, records);
  }

  Status scan_all() {
    for (std::size_t i = 0; i < options_.inputs.size(); ++i) {
      VIGIL_RETURN_IF_ERROR(scan(i));
    }
    submit_embeddings(true);
    return drain();
  }
  // Every output, the manifest last.
  Status write_outputs(HarvestOutputs& outputs) {
    phase_ = "write";
    report(true);
    count();
    VIGIL_RETURN_IF_ERROR(outputs.write(faces_, summary));
    set_timings();
    return outputs.write_manifest(summary);
  }
  // The outputs to the storage, the manifest last.
  Status upload(Uploader& uploader, const std::vector<UploadFile>& written);
  void finish() {
    phase_ = "done";
    set_timings();
    report(true);
  }

  HarvestSummary summary;

 private:
  Status scan(std::size_t input);
  Status take_results(InputScan& scan);
  void submit_embeddings(bool all);
  Status complete_front();
  Status drain() {
    while (!pending_.empty()) VIGIL_RETURN_IF_ERROR(complete_front());
    return {};
  }
  void count() {
    const FaceTrackCounts& c = faces_.counts();
    summary.sampled = c.sampled;
    summary.faces_detected = c.faces_detected;
    summary.faces_embedded = c.faces_embedded;
    summary.resumed_frames = detections_.resumed_frames();
    summary.resumed_embedder_calls = models_.resumed_embedder_calls();
  }
  void set_timings() {
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    summary.cpu_seconds = process_cpu_seconds() - cpu_start_;
  }
  void report(bool force);

  const HarvestOptions& options_;
  const HarvestProgressFn& progress_fn_;
  DetectionJournal detections_;
  JournaledModels models_;
  FaceTracks faces_;
  const int workers_;
  const double cores_;
  const std::size_t max_pending_;  // embedder calls in flight: enough to keep every worker busy
  const std::size_t embed_batch_;
  std::deque<std::unique_ptr<ModelCall>> pending_;  // in submission order
  std::uint64_t frames_total_ = 0, frames_done_ = 0;
  const char* phase_ = nullptr;  // "write", "upload", "done" once scanning is over
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_report_{};
  double cpu_start_ = process_cpu_seconds();
  ProgressMeter meter_;
  std::uint64_t files_uploaded_ = 0, files_to_upload_ = 0;
};

Status Run::scan(std::size_t input) {
  auto scan = InputScan::start(options_, input, workers_, cores_, detections_);
  if (!scan.ok()) return scan.error();
  if ((*scan)->frame_count() > 0) frames_total_ += static_cast<std::uint64_t>((*scan)->frame_count());
  faces_.start_input(input);
  if (Status taken = take_results(**scan); !taken.ok()) {
    (*scan)->stop();
    return taken;
  }
  CameraStatus camera;
  VIGIL_RETURN_IF_ERROR((*scan)->finish(camera));
  summary.frames += camera.frames_decoded;
  summary.shot_cuts += camera.shot_cuts;
  frames_done_ = summary.frames;
  faces_.end_input();
  submit_embeddings(false);
  return drain();
}

// Each tracked frame's faces to the selector, the faces of ended tracks to the embedder.
Status Run::take_results(InputScan& scan) {
  FrameResult result;
  while (scan.next(result)) {
    faces_.track(result);
    frames_done_ = summary.frames + result.frame->seq + 1;
    submit_embeddings(false);
    while (pending_.size() > max_pending_) VIGIL_RETURN_IF_ERROR(complete_front());
    report(false);
  }
  return {};
}

// Takes back the oldest embedder call: the embeddings to their tracks.
Status Run::complete_front() {
  // Popped before it is finished: after an error there is nothing left for ~Run to wait for.
  const std::unique_ptr<ModelCall> call = std::move(pending_.front());
  pending_.pop_front();
  VIGIL_RETURN_IF_ERROR(models_.finish(*call));
  faces_.add_embedded(call->faces, call->job.embeddings);
  return {};
}

// Hands the waiting faces to the embedder in full batches (all: the rest too).
void Run::submit_embeddings(bool all) {
  std::vector<KeptFace>& waiting = faces_.to_embed();
  while (waiting.size() >= embed_batch_ || (all && !waiting.empty())) {
    const auto n = static_cast<std::ptrdiff_t>(std::min(embed_batch_, waiting.size()));
    auto call = std::make_unique<ModelCall>();
    call->faces.assign(std::make_move_iterator(waiting.begin()), std::make_move_iterator(waiting.begin() + n));
    waiting.erase(waiting.begin(), waiting.begin() + n);
    ++summary.embedder_calls;
    models_.embed(*call);
    pending_.push_back(std::move(call));
  }
}

void Run::report(bool force) {
  if (!progress_fn_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_report_ < std::chrono::seconds(1)) return;
  last_report_ = now;
  HarvestProgress p;
  p.phase = phase_ ? phase_ : detections_.replaying() ? "resume" : "scan";
  p.frames_done = phase_ ? summary.frames : frames_done_;
  p.frames_total = frames_total_;
  p.faces = faces_.counts().faces_detected;
  p.tracks = faces_.tracks().size();
  p.embedder_calls = summary.embedder_calls;
  p.files_uploaded = files_uploaded_;
  p.files_to_upload = files_to_upload_;
  p.threads = process_thread_count();
  p.rss_mb = process_rss_mb();
  meter_.update(p, std::chrono::duration<double>(now - start_).count(), process_cpu_seconds() - cpu_start_);
  progress_fn_(p);
}

Status Run::upload(Uploader& uploader, const std::vector<UploadFile>& written) {
  phase_ = "upload";
  files_to_upload_ = written.size();
  report(true);
  std::vector<UploadFile> first(written.begin(), written.end()), last;
  const auto manifest = std::find_if(first.begin(), first.end(), [](const UploadFile& f) { return f.name == "manifest.json"; });
  if (manifest != first.end()) {
    last.push_back(*manifest);
    first.erase(manifest);
  }
  const auto on_progress = [&](const UploadStats& s) {
    files_uploaded_ = s.uploaded + s.recorded + s.found;
    report(false);
  };
  Status status = uploader.upload(first, on_progress);
  if (status.ok()) status = uploader.upload(last, on_progress);
  summary.upload = uploader.stats();
  summary.upload_destination = uploader.destination();
  report(true);
  return status;
}

// The checks that need no model: inputs, the output folder (writable; a killed run's
// temporaries removed), the gallery folder, the upload target.
Status check_before_work(const HarvestOptions& options) {
  if (options.inputs.empty()) return Error{ErrorCode::invalid_argument, "no input videos"};
  if (options.stride < 1) return Error{ErrorCode::invalid_argument, "--stride must be 1 or more"};
  if (options.cpu_budget < 0) return Error{ErrorCode::invalid_argument, "--cpu-budget must be positive"};
  if (!options.detector.finds_faces()) {
    return Error{ErrorCode::invalid_argument,
                 "the detector of a harvest finds faces with keypoints (a kind such as blazeface or scrfd), not " + options.detector.kind};
  }
  for (const std::string& in : options.inputs) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(in, ec)) return Error{ErrorCode::not_found, in + ": no such file"};
  }
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (ec || !std::filesystem::is_directory(options.out_dir, ec)) {
    return Error{ErrorCode::unavailable, "cannot create the output folder " + options.out_dir};
  }
  VIGIL_RETURN_IF_ERROR(write_file_atomically((std::filesystem::path(options.out_dir) / ".writable").string(), ""));
  std::filesystem::remove(std::filesystem::path(options.out_dir) / ".writable", ec);
  for (const char* sub : {"", "crops", "thumbs"}) {  // what a killed run was writing
    remove_stale_temporaries((std::filesystem::path(options.out_dir) / sub).string());
  }
  if (!options.gallery.empty()) VIGIL_RETURN_IF_ERROR(check_gallery_dir(options.gallery));
  if (options.upload) {  // before the work, which would have nowhere to go
    Uploader check(*options.upload, {}, {});
    VIGIL_RETURN_IF_ERROR(check.check_bucket());
  }
  return {};
}

// One embedder per model worker, each on one intra-op thread; one detector (the engine makes
// its own), so that a detector that cannot load fails before any work.
Status make_models(const HarvestOptions& options, int workers, std::unique_ptr<Detector>& detector,
                   std::vector<std::unique_ptr<FaceEmbedder>>& embedders) {
  set_inference_threads(1);  // OpenCV DNN's count is process-wide
  ModelConfig detector_config = options.detector;
  ModelConfig embedder_config = options.embedder;
  detector_config.set_threads(1);
  embedder_config.set_threads(1);
  auto made = make_detector(detector_config);
  if (!made.ok()) return with_context(made.error(), "detector");
  detector = std::move(made).value();
  for (int w = 0; w < workers; ++w) {
    auto embedder = make_embedder(embedder_config);
    if (!embedder.ok()) return with_context(embedder.error(), "embedder");
    embedders.push_back(std::move(embedder).value());
  }
  return {};
}

// The outputs to the storage; what earlier runs sent comes from their journal records, and
// this run's are appended to it.
Status upload_outputs(const HarvestOptions& options, const std::vector<std::string>& records, Journal& journal,
                      CpuGovernor& governor, Run& run, const std::vector<UploadFile>& written) {
  UploadLedger ledger;
  UploadRecord record;
  for (const std::string& r : records) {
    const auto kind = record_kind(r);
    if (kind != RecordKind::uploaded && kind != RecordKind::upload_started) continue;
    VIGIL_RETURN_IF_ERROR(decode_upload(r, record));
    (kind == RecordKind::uploaded ? ledger.uploaded : ledger.started)[record.url] = record.md5;
  }
  Uploader uploader(*options.upload, std::move(ledger), [&journal](bool uploaded, const std::string& url, const std::string& md5) {
    return journal.append(encode_upload(uploaded ? RecordKind::uploaded : RecordKind::upload_started, url, md5));
  });
  uploader.set_pacing([&governor] { return governor.admit(); });
  return run.upload(uploader, written);
}

}  // namespace

Result<HarvestSummary> harvest(const HarvestOptions& options, const HarvestProgressFn& progress) {
  VIGIL_RETURN_IF_ERROR(check_before_work(options));
  auto fingerprint = harvest_fingerprint(options);
  if (!fingerprint.ok()) return fingerprint.error();
  const double cores = options.cpu_budget > 0 ? options.cpu_budget : static_cast<double>(hardware_cores());
  const int workers = std::max(1, static_cast<int>(cores));  // one per whole core of the budget
  std::unique_ptr<Detector> detector;
  std::vector<std::unique_ptr<FaceEmbedder>> embedders;
  VIGIL_RETURN_IF_ERROR(make_models(options, workers, detector, embedders));
  CpuGovernor governor(cores, true);
  Gallery gallery;
  std::vector<std::string> gallery_warnings;
  if (!options.gallery.empty()) {  // embedded with the first worker's models before the workers start
    auto loaded = load_gallery(options.gallery, *detector, *embedders.front(), gallery_warnings);
    if (!loaded.ok()) return loaded.error();
    gallery = std::move(loaded).value();
  }
  std::vector<std::string> records;
  auto journal = open_harvest_journal(options.out_dir, fingerprint->text, records);
  if (!journal.ok()) return journal.error();
  detector.reset();
  ModelPool pool(std::move(embedders), governor);
  Run run(options, pool, progress, workers, cores);
  run.summary.warnings = gallery_warnings;
  run.summary.cpu_budget = cores;
  run.summary.model_workers = workers;
  run.resume_from(**journal, records);
  VIGIL_RETURN_IF_ERROR(run.scan_all());
  HarvestOutputs outputs(options, std::move(fingerprint).value(), options.gallery.empty() ? nullptr : &gallery);
  VIGIL_RETURN_IF_ERROR(run.write_outputs(outputs));
  if (options.upload) VIGIL_RETURN_IF_ERROR(upload_outputs(options, records, **journal, governor, run, outputs.written()));
  run.finish();
  return run.summary;
}

}  // namespace vigil
