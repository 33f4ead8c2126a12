#include "vigil/harvest/harvester.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>

#include "vigil/concurrency/cpu_governor.h"
#include "vigil/core/atomic_file.h"
#include "vigil/core/process_stats.h"
#include "vigil/harvest/checkpoint.h"
#include "vigil/harvest/face_tracks.h"
#include "vigil/harvest/journal.h"
#include "vigil/harvest/journaled_models.h"
#include "vigil/harvest/outputs.h"
#include "vigil/harvest/scan.h"
#include "vigil/infer/backend.h"
#include "vigil/pipeline/face_stage.h"
#include "vigil/pipeline/model_factory.h"
#include "vigil/source/source.h"

namespace vigil {

namespace {

// The harvest's flow: each input decoded, sampled, detected, tracked, its faces selected per
// track and embedded in batches by the engine in offline mode (InputScan, its models behind
// the journal), the results and embedded faces taken in the order the engine made them into
// the records (FaceTracks); then the outputs (HarvestOutputs).
class Run {
 public:
  Run(const HarvestOptions& options, const HarvestProgressFn& progress, const FaceEmbedder& embedder, int workers, double cores)
      : options_(options),
        progress_fn_(progress),
        embeddings_(embedder.dim()),
        faces_(embedder.face_template(), embedder.dim()),
        workers_(workers),
        cores_(cores) {}

  // The journal to append to, and the records a killed run left (they must outlive this).
  void resume_from(Journal& journal, const std::vector<std::string>& records) {
    detections_.resume_from(journal, records);
    embeddings_.resume_from(journal, records);
  }

  // Every input through one engine, in order.
  Status scan_all() {
    auto engine = InputScan::start(options_, workers_, cores_, detections_, embeddings_);
    if (!engine.ok()) return engine.error();
    for (std::size_t i = 0; i < options_.inputs.size(); ++i) {
      VIGIL_RETURN_IF_ERROR(scan(**engine, i));
    }
    return {};
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
  Status scan(InputScan& engine, std::size_t input);
  Status take_items(InputScan& scan);
  void count() {
    const FaceTrackCounts& c = faces_.counts();
    summary.sampled = c.sampled;
    summary.faces_detected = c.faces_detected;
    summary.faces_embedded = c.faces_embedded;
    summary.resumed_frames = detections_.resumed_frames();
    summary.resumed_embedder_calls = embeddings_.resumed_batches();
  }
  void set_timings() {
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    summary.cpu_seconds = process_cpu_seconds() - cpu_start_;
  }
  void report(bool force);

  const HarvestOptions& options_;
  const HarvestProgressFn& progress_fn_;
  DetectionJournal detections_;
  EmbeddingJournal embeddings_;
  FaceTracks faces_;
  const int workers_;
  const double cores_;
  std::uint64_t frames_total_ = 0, frames_done_ = 0;
  const char* phase_ = nullptr;  // "write", "upload", "done" once scanning is over
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_report_{};
  double cpu_start_ = process_cpu_seconds();
  ProgressMeter meter_;
  std::uint64_t files_uploaded_ = 0, files_to_upload_ = 0;
};

Status Run::scan(InputScan& engine, std::size_t input) {
  faces_.start_input(input);
  VIGIL_RETURN_IF_ERROR(engine.begin(input, faces_.face_base()));
  if (engine.frame_count() > 0) frames_total_ += static_cast<std::uint64_t>(engine.frame_count());
  if (Status taken = take_items(engine); !taken.ok()) {
    engine.stop();
    return taken;
  }
  CameraStatus camera;
  VIGIL_RETURN_IF_ERROR(engine.finish(camera));
  summary.frames += camera.frames_decoded;
  summary.shot_cuts += camera.shot_cuts;
  frames_done_ = summary.frames;
  return embeddings_.status();
}

// Each tracked frame to the records, each batch of embedded faces to its tracks.
Status Run::take_items(InputScan& scan) {
  ScanItem item;
  while (scan.next(item)) {
    if (item.is_faces) {
      ++summary.embedder_calls;
      VIGIL_RETURN_IF_ERROR(faces_.add_embedded(item.faces));
    } else {
      faces_.track(item.result);
      frames_done_ = summary.frames + item.result.frame->seq + 1;
    }
    report(false);
  }
  return {};
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

// One detector and one embedder on one intra-op thread each (the engine makes its own for its
// workers), so that a model that cannot load fails before any work, and for the gallery.
Status make_models(const HarvestOptions& options, std::unique_ptr<Detector>& detector, std::unique_ptr<FaceEmbedder>& embedder) {
  set_inference_threads(1);  // OpenCV DNN's count is process-wide
  ModelConfig detector_config = options.detector;
  ModelConfig embedder_config = options.embedder;
  detector_config.set_threads(1);
  embedder_config.set_threads(1);
  auto made = make_detector(detector_config);
  if (!made.ok()) return with_context(made.error(), "detector");
  detector = std::move(made).value();
  auto made_embedder = make_embedder(embedder_config);
  if (!made_embedder.ok()) return with_context(made_embedder.error(), "embedder");
  embedder = std::move(made_embedder).value();
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

Result<HarvestSummary> harvest(const HarvestOptions& given, const HarvestProgressFn& progress) {
  HarvestOptions options = given;
  VIGIL_RETURN_IF_ERROR(check_before_work(options));
  auto fingerprint = harvest_fingerprint(options);
  if (!fingerprint.ok()) return fingerprint.error();
  const double cores = options.cpu_budget > 0 ? options.cpu_budget : static_cast<double>(hardware_cores());
  const int workers = std::max(1, static_cast<int>(cores));  // one per whole core of the budget
  std::unique_ptr<Detector> detector;
  std::unique_ptr<FaceEmbedder> embedder;
  VIGIL_RETURN_IF_ERROR(make_models(options, detector, embedder));
  const FaceEmbedder::Matching matching = embedder->matching();  // thresholds not given: the embedder's
  if (!options.cluster_threshold) options.cluster_threshold = matching.cluster_threshold;
  if (!options.gallery_threshold) options.gallery_threshold = matching.gallery_threshold;
  if (!options.gallery_margin) options.gallery_margin = matching.gallery_margin;
  CpuGovernor governor(cores, true);
  Gallery gallery;
  std::vector<std::string> gallery_warnings;
  if (!options.gallery.empty()) {  // embedded with the models made here, before the engine starts
    auto loaded = load_gallery(options.gallery, *detector, *embedder, gallery_warnings);
    if (!loaded.ok()) return loaded.error();
    gallery = std::move(loaded).value();
  }
  std::vector<std::string> records;
  auto journal = open_harvest_journal(options.out_dir, fingerprint->text, records);
  if (!journal.ok()) return journal.error();
  detector.reset();
  Run run(options, progress, *embedder, workers, cores);
  run.summary.warnings = gallery_warnings;
  run.summary.cpu_budget = cores;
  run.summary.model_workers = workers;
  run.resume_from(**journal, records);
  VIGIL_RETURN_IF_ERROR(run.scan_all());
  HarvestOutputs outputs(options, std::move(fingerprint).value(), options.gallery.empty() ? nullptr : &gallery,
                         embedder->family_name(), embedder->dim());
  VIGIL_RETURN_IF_ERROR(run.write_outputs(outputs));
  if (options.upload) VIGIL_RETURN_IF_ERROR(upload_outputs(options, records, **journal, governor, run, outputs.written()));
  run.finish();
  return run.summary;
}

}  // namespace vigil
