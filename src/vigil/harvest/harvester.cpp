#include "vigil/harvest/harvester.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <unordered_map>

#include "vigil/concurrency/cpu_governor.h"
#include "vigil/core/atomic_file.h"
#include "vigil/core/process_stats.h"
#include "vigil/harvest/checkpoint.h"
#include "vigil/harvest/journal.h"
#include "vigil/harvest/model_pool.h"
#include "vigil/harvest/npy.h"
#include "vigil/identity/agglomerative.h"
#include "vigil/infer/backend.h"
#include "vigil/source/source.h"
#include "vigil/track/byte_tracker.h"
#include "vigil/vision/face_align.h"

namespace vigil {

namespace {

using json = nlohmann::json;

// A face the selector keeps, with its aligned chip (RGB, chip_size square) until embedded.
struct KeptFace {
  FaceCandidate candidate;
  std::size_t input = 0;
  std::uint64_t frame = 0;
  BBox bbox;
  std::vector<Point2> keypoints;
  std::vector<std::uint8_t> chip;
};

struct TrackRecord {
  std::uint64_t id = 0;  // global, in order of first appearance
  std::size_t input = 0;
  std::uint64_t first_frame = 0, last_frame = 0;
  double first_ts = 0, last_ts = 0;
  std::uint64_t faces_detected = 0;
  std::vector<std::uint64_t> embedded;  // face ids
  std::uint64_t best_face = 0;
  float best_quality = -1;
  // Its embedded faces' (quality, face id, row), for the track's descriptor.
  struct Embedded {
    float quality;
    std::uint64_t face_id;
    std::size_t row;
  };
  std::vector<Embedded> rows;
};

struct FaceRecord {
  KeptFace face;
  std::size_t row = 0;
};

// A model call on its way: submitted to the pool, or filled from the journal.
struct Pending {
  ModelJob job;
  bool replayed = false;        // from the journal: not submitted
  std::size_t input = 0;        // detect: the input its frames are from
  std::vector<KeptFace> faces;  // embed: the faces, in the job's order
};

class Run {
 public:
  Run(const HarvestOptions& options, ModelPool& pool, const HarvestProgressFn& progress)
      : options_(options),
        pool_(pool),
        progress_fn_(progress),
        selector_(options.select),
        max_pending_(2 * pool.workers() + 1),
        face_template_(pool.embedder().face_template()),
        dim_(pool.embedder().dim()),
        detect_batch_(static_cast<std::size_t>(std::max(1, pool.detector().max_batch()))),
        embed_batch_(static_cast<std::size_t>(std::max(1, pool.embedder().max_batch()))) {}
  // Jobs still with the pool (after an error) finish before their memory goes.
  ~Run() {
    for (const auto& p : pending_) {
      if (!p->replayed) pool_.wait(p->job);
    }
  }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  // The journal to append to, and its records after the header (what to replay).
  void resume_from(Journal& journal, const std::vector<std::string>& records, const std::string& fingerprint) {
    journal_ = &journal;
    fingerprint_ = json::parse(fingerprint);
    for (const std::string& r : records) {
      if (record_kind(r) == RecordKind::detections) replay_detections_.push_back(&r);
      if (record_kind(r) == RecordKind::embeddings) replay_embeddings_.push_back(&r);
    }
  }

  Status scan_all() {
    for (std::size_t i = 0; i < options_.inputs.size(); ++i) {
      VIGIL_RETURN_IF_ERROR(scan(i));
    }
    submit_embeddings(true);
    return drain();
  }

  Status write_outputs(HarvestSummary& out);

  HarvestSummary summary;

 private:
  Status scan(std::size_t input);
  Status submit_detection(std::size_t input, std::vector<FrameRef>& frames);
  void submit_embeddings(bool all);
  Status complete_front();
  Status drain() {
    while (!pending_.empty()) VIGIL_RETURN_IF_ERROR(complete_front());
    return {};
  }
  void track(Pending& p);
  void apply_embeddings(Pending& p);
  void end_track(std::uint64_t track_id);
  Embedding descriptor(const TrackRecord& t) const;
  void report(bool force);

  const HarvestOptions& options_;
  ModelPool& pool_;
  const HarvestProgressFn& progress_fn_;
  FaceSelector selector_;
  const std::size_t max_pending_;  // model calls in flight: enough to keep every worker busy
  const FaceTemplate face_template_;
  const std::size_t dim_;
  const std::size_t detect_batch_, embed_batch_;
  FaceAligner aligner_;
  std::vector<float> chip_floats_;
  std::deque<std::unique_ptr<Pending>> pending_;      // in submission order
  std::optional<ByteTracker> tracker_;                // the current input's
  std::unordered_map<std::uint64_t, std::uint64_t> global_ids_;  // its tracker ids -> global ids
  std::unordered_map<std::uint64_t, KeptFace> kept_;  // by face id
  std::vector<KeptFace> to_embed_;
  std::vector<FaceRecord> faces_;                     // embedded, in row order
  std::vector<float> embeddings_;                     // rows x dim
  std::map<std::uint64_t, TrackRecord> tracks_;      // by global id
  std::uint64_t next_face_ = 1, next_track_ = 1;
  std::uint64_t frames_total_ = 0;
  std::vector<TrackedObject> objects_;
  std::vector<TrackEvent> events_;
  std::vector<std::uint64_t> dropped_;
  Journal* journal_ = nullptr;
  json fingerprint_;
  std::vector<const std::string*> replay_detections_, replay_embeddings_;  // in the order they were made
  std::size_t next_detections_ = 0, next_embeddings_ = 0;
  DetectionBatch replayed_detections_;
  EmbeddingBatch replayed_embeddings_;
  std::vector<std::uint64_t> batch_ids_;
  std::vector<float> embedding_values_;
  Status replay_error_;
  const char* phase_ = nullptr;  // "write", "done" once scanning is over  // a journal record that does not fit, found when submitting
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_report_{};
  double cpu_start_ = process_cpu_seconds();
  ProgressMeter meter_;
};

Status Run::scan(std::size_t input) {
  SourceConfig config;
  config.type = SourceType::file;
  config.url = options_.inputs[input];
  config.live = false;
  config.decoder_threads = 1;
  auto opened = open_source(config, "harvest");
  if (!opened.ok()) return opened.error();
  std::unique_ptr<Source> source = std::move(opened).value();
  if (source->info().frame_count > 0) frames_total_ += static_cast<std::uint64_t>(source->info().frame_count);
  TrackerConfig tracker_config;
  tracker_config.lost_frames = options_.track_buffer;
  tracker_.emplace(tracker_config);
  global_ids_.clear();
  std::vector<FrameRef> batch;
  std::uint64_t decoded = 0;
  for (;;) {
    auto frame = source->read();
    if (!frame.ok()) return frame.error();  // names the file
    if (!*frame) break;  // the end
    ++decoded;
    ++summary.frames;
    if ((decoded - 1) % static_cast<std::uint64_t>(options_.stride) != 0) continue;
    batch.push_back(std::move(frame).value());
    if (batch.size() >= detect_batch_) VIGIL_RETURN_IF_ERROR(submit_detection(input, batch));
    report(false);
  }
  if (!batch.empty()) VIGIL_RETURN_IF_ERROR(submit_detection(input, batch));
  VIGIL_RETURN_IF_ERROR(drain());
  // The input ended: every track still open ends with it.
  for (std::uint64_t id : selector_.open_tracks()) end_track(id);
  submit_embeddings(false);
  return drain();
}

// Hands a batch of sampled frames to the detector (or takes its detections from the journal),
// then takes back finished calls in order while too many are in flight.
Status Run::submit_detection(std::size_t input, std::vector<FrameRef>& frames) {
  auto p = std::make_unique<Pending>();
  p->job.kind = ModelJob::Kind::detect;
  p->job.frames.swap(frames);
  p->input = input;
  if (next_detections_ < replay_detections_.size()) {  // the killed run detected these frames
    VIGIL_RETURN_IF_ERROR(decode_detections(*replay_detections_[next_detections_++], replayed_detections_));
    if (replayed_detections_.input != input || replayed_detections_.first_frame != p->job.frames.front()->seq ||
        replayed_detections_.frames.size() != p->job.frames.size()) {
      return Error{ErrorCode::data_loss, "the harvest journal does not match the inputs (detections for other frames)"};
    }
    p->job.detections.swap(replayed_detections_.frames);
    p->replayed = true;
    summary.resumed_frames += p->job.frames.size();
  } else {
    pool_.submit(p->job);
  }
  pending_.push_back(std::move(p));
  while (pending_.size() > max_pending_) VIGIL_RETURN_IF_ERROR(complete_front());
  return {};
}

// Takes back the oldest model call: detections go to the tracker, embeddings to their tracks.
Status Run::complete_front() {
  Pending& p = *pending_.front();
  if (!p.replayed) pool_.wait(p.job);
  // The pool's work is done with it: popping it after an error leaves nothing for ~Run to wait for.
  const std::unique_ptr<Pending> owned = std::move(pending_.front());
  pending_.pop_front();
  if (!p.job.status.ok()) return p.job.status;
  if (p.job.kind == ModelJob::Kind::detect) {
    if (!p.replayed && journal_) {
      VIGIL_RETURN_IF_ERROR(journal_->append(encode_detections(static_cast<std::uint32_t>(p.input), p.job.frames.front()->seq,
                                                                std::span<const Detections>(p.job.detections.data(), p.job.frames.size()))));
    }
    track(p);
    submit_embeddings(false);
  } else {
    if (!p.replayed && journal_) {
      batch_ids_.clear();
      embedding_values_.clear();
      for (std::size_t i = 0; i < p.faces.size(); ++i) {
        batch_ids_.push_back(p.faces[i].candidate.face_id);
        embedding_values_.insert(embedding_values_.end(), p.job.embeddings[i].begin(), p.job.embeddings[i].end());
      }
      VIGIL_RETURN_IF_ERROR(journal_->append(encode_embeddings(batch_ids_, static_cast<std::uint32_t>(dim_), embedding_values_)));
    }
    apply_embeddings(p);
  }
  return replay_error_;
}

// The sampled frames of a detection batch, in order, through the tracker; each tracked face
// aligned, scored and offered to the selector.
void Run::track(Pending& p) {
  const std::size_t chip_values = static_cast<std::size_t>(face_template_.size) * static_cast<std::size_t>(face_template_.size) * 3;
  chip_floats_.resize(chip_values);
  for (std::size_t i = 0; i < p.job.frames.size(); ++i) {
    const Frame& frame = *p.job.frames[i];
    Detections& detections = p.job.detections[i];  // the tracker writes each one's track id
    ++summary.sampled;
    objects_.clear();
    events_.clear();
    tracker_->update(detections, 1, objects_, events_);
    const double ts = static_cast<double>(frame.pts_ms) / 1000.0;
    for (const TrackedObject& o : objects_) {
      if (o.detection < 0 || o.predicted) continue;
      const Detection& d = detections[static_cast<std::size_t>(o.detection)];
      auto [it, fresh] = global_ids_.try_emplace(o.track_id, 0);
      if (fresh) {
        it->second = next_track_++;
        TrackRecord& t = tracks_[it->second];
        t.id = it->second;
        t.input = p.input;
        t.first_frame = frame.seq;
        t.first_ts = ts;
      }
      TrackRecord& t = tracks_[it->second];
      t.last_frame = frame.seq;
      t.last_ts = ts;
      ++t.faces_detected;
      ++summary.faces_detected;
      const FaceQuality quality = aligner_.align(frame.image, d, chip_floats_.data(), face_template_);
      const FaceCandidate candidate{next_face_++, it->second, ts, quality.value()};
      dropped_.clear();
      if (selector_.offer(candidate, dropped_)) {
        KeptFace k;
        k.candidate = candidate;
        k.input = p.input;
        k.frame = frame.seq;
        k.bbox = d.bbox;
        for (int kp = 0; kp < d.keypoint_count; ++kp) k.keypoints.push_back(d.keypoints[static_cast<std::size_t>(kp)]);
        k.chip.resize(chip_values);
        for (std::size_t v = 0; v < chip_values; ++v) {
          k.chip[v] = static_cast<std::uint8_t>(std::clamp(std::lround(chip_floats_[v]), 0L, 255L));
        }
        kept_[candidate.face_id] = std::move(k);
      }
      for (std::uint64_t id : dropped_) kept_.erase(id);
    }
    for (const TrackEvent& e : events_) {
      if (e.kind != TrackEventKind::removed) continue;
      const auto it = global_ids_.find(e.track_id);
      if (it != global_ids_.end()) end_track(it->second);
    }
  }
}

void Run::end_track(std::uint64_t track_id) {
  for (const FaceCandidate& c : selector_.finish(track_id)) {
    auto it = kept_.find(c.face_id);
    if (it == kept_.end()) continue;
    to_embed_.push_back(std::move(it->second));
    kept_.erase(it);
  }
}

// Hands the waiting faces to the embedder in full batches (all: the rest too), or takes their
// embeddings from the journal.
void Run::submit_embeddings(bool all) {
  while (to_embed_.size() >= embed_batch_ || (all && !to_embed_.empty())) {
    const std::size_t n = std::min(embed_batch_, to_embed_.size());
    auto p = std::make_unique<Pending>();
    p->job.kind = ModelJob::Kind::embed;
    p->job.count = n;
    p->faces.assign(std::make_move_iterator(to_embed_.begin()), std::make_move_iterator(to_embed_.begin() + static_cast<std::ptrdiff_t>(n)));
    to_embed_.erase(to_embed_.begin(), to_embed_.begin() + static_cast<std::ptrdiff_t>(n));
    ++summary.embedder_calls;
    if (next_embeddings_ < replay_embeddings_.size()) {  // the killed run embedded these faces
      p->replayed = true;
      ++summary.resumed_embedder_calls;
      batch_ids_.clear();
      for (const KeptFace& f : p->faces) batch_ids_.push_back(f.candidate.face_id);
      const Status decoded = decode_embeddings(*replay_embeddings_[next_embeddings_++], replayed_embeddings_);
      if (!decoded.ok()) {
        replay_error_ = decoded;
      } else if (replayed_embeddings_.face_ids != batch_ids_ || replayed_embeddings_.dim != dim_) {
        replay_error_ = Error{ErrorCode::data_loss, "the harvest journal does not match the inputs (embeddings of other faces)"};
      } else {
        for (std::size_t i = 0; i < n; ++i) {
          const float* row = replayed_embeddings_.values.data() + i * dim_;
          Embedding& e = p->job.embeddings.emplace_back(dim_);
          std::copy(row, row + dim_, e.begin());
        }
      }
      if (!replay_error_.ok()) p->job.status = replay_error_;
    } else {
      const std::size_t values = p->faces.front().chip.size();
      p->job.chips.resize(n * values);
      for (std::size_t i = 0; i < n; ++i) {
        std::copy(p->faces[i].chip.begin(), p->faces[i].chip.end(), p->job.chips.begin() + static_cast<std::ptrdiff_t>(i * values));
      }
      pool_.submit(p->job);
    }
    pending_.push_back(std::move(p));
  }
}

void Run::apply_embeddings(Pending& p) {
  for (std::size_t i = 0; i < p.faces.size(); ++i) {
    const Embedding& e = p.job.embeddings[i];
    KeptFace& f = p.faces[i];
    TrackRecord& t = tracks_[f.candidate.track_id];
    t.rows.push_back({f.candidate.quality, f.candidate.face_id, faces_.size()});
    t.embedded.push_back(f.candidate.face_id);
    if (f.candidate.quality > t.best_quality) {
      t.best_quality = f.candidate.quality;
      t.best_face = f.candidate.face_id;
    }
    embeddings_.insert(embeddings_.end(), e.begin(), e.end());
    faces_.push_back({std::move(f), faces_.size()});
    ++summary.faces_embedded;
  }
}

void Run::report(bool force) {
  if (!progress_fn_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_report_ < std::chrono::seconds(1)) return;
  last_report_ = now;
  HarvestProgress p;
  p.phase = phase_ ? phase_ : next_detections_ < replay_detections_.size() ? "resume" : "scan";
  p.frames_done = summary.frames;
  p.frames_total = frames_total_;
  p.faces = summary.faces_detected;
  p.tracks = tracks_.size();
  p.embedder_calls = summary.embedder_calls;
  p.threads = process_thread_count();
  p.rss_mb = process_rss_mb();
  meter_.update(p, std::chrono::duration<double>(now - start_).count(), process_cpu_seconds() - cpu_start_);
  progress_fn_(p);
}

// What a track looks like to the clustering: the mean of its best faces' embeddings (the
// best_k by quality, as the selector ranks them). Blurred, turned or half-hidden faces say
// little about who it is, and with --all-faces they would outnumber the good ones; taking the
// same best faces either way gives --all-faces the same people as the default.
Embedding Run::descriptor(const TrackRecord& t) const {
  std::vector<TrackRecord::Embedded> best = t.rows;
  std::sort(best.begin(), best.end(), [](const auto& a, const auto& b) {
    return a.quality > b.quality || (a.quality == b.quality && a.face_id < b.face_id);
  });
  if (options_.select.best_k > 0 && best.size() > static_cast<std::size_t>(options_.select.best_k)) {
    best.resize(static_cast<std::size_t>(options_.select.best_k));
  }
  Embedding sum(dim_);
  for (const auto& b : best) {
    for (std::size_t v = 0; v < dim_; ++v) sum[v] += embeddings_[b.row * dim_ + v];
  }
  return l2_normalised(sum);
}

Status Run::write_outputs(HarvestSummary& out) {
  namespace fs = std::filesystem;
  phase_ = "write";
  report(true);
  const fs::path dir(options_.out_dir);
  std::error_code ec;
  fs::create_directories(dir / "crops", ec);
  fs::create_directories(dir / "thumbs", ec);
  if (ec) return Error{ErrorCode::unavailable, "cannot create " + options_.out_dir + ": " + ec.message()};
  const FaceTemplate& face_template = face_template_;
  const int size = face_template.size;
  const auto chip_mat = [&](const KeptFace& f) {
    cv::Mat rgb(size, size, CV_8UC3, const_cast<std::uint8_t*>(f.chip.data()));
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    return bgr;
  };
  // People: tracks with embeddings, clustered by their mean embedding.
  std::vector<const TrackRecord*> embedded_tracks;
  std::vector<Embedding> means;
  for (const auto& [id, t] : tracks_) {
    if (t.embedded.empty()) continue;
    embedded_tracks.push_back(&t);
    means.push_back(descriptor(t));
  }
  const std::vector<int> labels = cluster_average_linkage(means, options_.cluster_threshold);
  std::map<std::uint64_t, int> person_of;
  int people = 0;
  for (std::size_t i = 0; i < embedded_tracks.size(); ++i) {
    person_of[embedded_tracks[i]->id] = labels[i];
    people = std::max(people, labels[i] + 1);
  }
  const auto person_name = [](int label) { return "person-" + std::to_string(label + 1); };

  std::string faces_text;
  std::map<std::uint64_t, const KeptFace*> face_by_id;
  for (const FaceRecord& r : faces_) {
    const KeptFace& f = r.face;
    face_by_id[f.candidate.face_id] = &f;
    json kp = json::array();
    for (const Point2& p : f.keypoints) kp.push_back({p.x, p.y});
    faces_text += json{{"face_id", f.candidate.face_id},
                       {"track_id", f.candidate.track_id},
                       {"input", f.input},
                       {"frame", f.frame},
                       {"ts", f.candidate.ts},
                       {"bbox", {f.bbox.x1, f.bbox.y1, f.bbox.x2, f.bbox.y2}},
                       {"keypoints", kp},
                       {"quality", f.candidate.quality},
                       {"row", r.row}}
                      .dump() +
                  "\n";
    std::vector<std::uint8_t> png;
    if (!cv::imencode(".png", chip_mat(f), png)) return Error{ErrorCode::internal, "cannot encode a crop"};
    VIGIL_RETURN_IF_ERROR(write_file_atomically((dir / "crops" / (std::to_string(f.candidate.face_id) + ".png")).string(),
                                                std::string_view(reinterpret_cast<const char*>(png.data()), png.size())));
  }
  std::string tracks_text;
  json identities = json::array();
  std::vector<json> members(static_cast<std::size_t>(people), json::array());
  std::vector<std::uint64_t> person_faces(static_cast<std::size_t>(people), 0);
  for (const TrackRecord* t : embedded_tracks) {
    const int person = person_of[t->id];
    tracks_text += json{{"track_id", t->id},
                        {"input", t->input},
                        {"first_frame", t->first_frame},
                        {"last_frame", t->last_frame},
                        {"first_ts", t->first_ts},
                        {"last_ts", t->last_ts},
                        {"faces_detected", t->faces_detected},
                        {"embedded_faces", t->embedded},
                        {"best_face", t->best_face},
                        {"person", person_name(person)}}
                       .dump() +
                   "\n";
    members[static_cast<std::size_t>(person)].push_back(t->id);
    person_faces[static_cast<std::size_t>(person)] += t->embedded.size();
    std::vector<std::uint8_t> jpeg;
    if (!cv::imencode(".jpg", chip_mat(*face_by_id.at(t->best_face)), jpeg, {cv::IMWRITE_JPEG_QUALITY, 90})) {
      return Error{ErrorCode::internal, "cannot encode a thumbnail"};
    }
    VIGIL_RETURN_IF_ERROR(write_file_atomically((dir / "thumbs" / (std::to_string(t->id) + ".jpg")).string(),
                                                std::string_view(reinterpret_cast<const char*>(jpeg.data()), jpeg.size())));
  }
  for (int p = 0; p < people; ++p) {
    identities.push_back({{"id", person_name(p)}, {"tracks", members[static_cast<std::size_t>(p)]}, {"faces", person_faces[static_cast<std::size_t>(p)]}});
  }
  VIGIL_RETURN_IF_ERROR(write_file_atomically((dir / "faces.jsonl").string(), faces_text));
  VIGIL_RETURN_IF_ERROR(write_file_atomically((dir / "tracks.jsonl").string(), tracks_text));
  VIGIL_RETURN_IF_ERROR(write_file_atomically((dir / "embeddings.npy").string(), npy_bytes(embeddings_, faces_.size(), dim_)));
  VIGIL_RETURN_IF_ERROR(write_file_atomically((dir / "identities.json").string(), json{{"people", identities}}.dump(1) + "\n"));

  summary.tracks = embedded_tracks.size();
  summary.people = static_cast<std::uint64_t>(people);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  summary.cpu_seconds = process_cpu_seconds() - cpu_start_;
  const json manifest = {
      {"inputs", fingerprint_["inputs"]},
      {"models",
       {{"detector", {{"path", options_.detector.model_path}, {"sha256", fingerprint_["detector"]["sha256"]}}},
        {"embedder", {{"path", options_.embedder.model_path}, {"sha256", fingerprint_["embedder"]["sha256"]}}}}},
      {"settings",
       {{"stride", options_.stride},
        {"best_k", options_.select.best_k},
        {"every_s", options_.select.every_s},
        {"all_faces", options_.select.all_faces},
        {"cluster_threshold", options_.cluster_threshold},
        {"cpu_budget", summary.cpu_budget},
        {"model_workers", summary.model_workers}}},
      {"counts",
       {{"frames", summary.frames},
        {"sampled", summary.sampled},
        {"faces_detected", summary.faces_detected},
        {"faces_embedded", summary.faces_embedded},
        {"embedder_calls", summary.embedder_calls},
        {"tracks", summary.tracks},
        {"people", summary.people}}},
      {"resumed", {{"frames", summary.resumed_frames}, {"embedder_calls", summary.resumed_embedder_calls}}},
      {"timings",
       {{"seconds", summary.seconds},
        {"cpu_seconds", summary.cpu_seconds},
        {"cpu_cores", summary.seconds > 0 ? summary.cpu_seconds / summary.seconds : 0.0}}}};
  VIGIL_RETURN_IF_ERROR(write_file_atomically((dir / "manifest.json").string(), manifest.dump(1) + "\n"));
  phase_ = "done";
  report(true);
  out = summary;
  return {};
}

// What makes a journal this run's: the inputs' bytes, the models' bytes and every setting that
// changes what the models are given or what they return. (cluster_threshold only regroups
// tracks at the end, so a resumed run may change it.)
Result<std::string> harvest_fingerprint(const HarvestOptions& o) {
  json inputs = json::array();
  for (const std::string& in : o.inputs) {
    auto sha = file_sha256(in);
    if (!sha.ok()) return sha.error();
    inputs.push_back({{"path", in}, {"sha256", *sha}});
  }
  auto detector = file_sha256(o.detector.model_path);
  if (!detector.ok()) return with_context(detector.error(), "detector");
  auto embedder = file_sha256(o.embedder.model_path);
  if (!embedder.ok()) return with_context(embedder.error(), "embedder");
  const json f = {{"version", 1},
                  {"inputs", inputs},
                  {"detector",
                   {{"sha256", *detector},
                    {"input_size", o.detector.input_size},
                    {"score_threshold", o.detector.score_threshold},
                    {"nms_iou", o.detector.nms_iou},
                    {"nms", static_cast<int>(o.detector.nms)},
                    {"max_batch", o.detector.max_batch},
                    {"range", static_cast<int>(o.detector.range)},
                    {"backend", static_cast<int>(o.detector.backend)},
                    {"precision", static_cast<int>(o.detector.precision)}}},
                  {"embedder",
                   {{"sha256", *embedder},
                    {"max_batch", o.embedder.max_batch},
                    {"backend", static_cast<int>(o.embedder.backend)},
                    {"precision", static_cast<int>(o.embedder.precision)}}},
                  {"stride", o.stride},
                  {"track_buffer", o.track_buffer},
                  {"select", {{"best_k", o.select.best_k}, {"every_s", o.select.every_s}, {"all_faces", o.select.all_faces}}}};
  return f.dump();
}

}  // namespace

Result<HarvestSummary> harvest(const HarvestOptions& options, const HarvestProgressFn& progress) {
  if (options.inputs.empty()) return Error{ErrorCode::invalid_argument, "no input videos"};
  if (options.stride < 1) return Error{ErrorCode::invalid_argument, "--stride must be 1 or more"};
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
  auto fingerprint = harvest_fingerprint(options);
  if (!fingerprint.ok()) return fingerprint.error();
  if (options.cpu_budget < 0) return Error{ErrorCode::invalid_argument, "--cpu-budget must be positive"};
  const double cores = options.cpu_budget > 0 ? options.cpu_budget : static_cast<double>(hardware_cores());
  // One model worker per whole core of the budget, each on one intra-op thread.
  const int workers = std::max(1, static_cast<int>(cores));
  set_inference_threads(1);  // before the backends are made: some read it then
  std::vector<std::unique_ptr<BlazeFace>> detectors;
  std::vector<std::unique_ptr<FaceEmbedder>> embedders;
  for (int w = 0; w < workers; ++w) {
    auto detector = BlazeFace::create(options.detector);
    if (!detector.ok()) return with_context(detector.error(), "detector");
    auto embedder = FaceEmbedder::create(options.embedder);
    if (!embedder.ok()) return with_context(embedder.error(), "embedder");
    detectors.push_back(std::move(detector).value());
    embedders.push_back(std::move(embedder).value());
  }
  CpuGovernor governor(cores, true);

  // The journal: a new one starts with this run's fingerprint; one left by a killed run of the
  // same inputs and settings is replayed.
  const std::string journal_path = (std::filesystem::path(options.out_dir) / "harvest.journal").string();
  std::vector<std::string> records;
  auto journal = Journal::open(journal_path, records);
  if (!journal.ok()) return journal.error();
  if (records.empty()) {
    VIGIL_RETURN_IF_ERROR((*journal)->append(encode_header(*fingerprint)));
  } else {
    auto header = decode_header(records.front());
    if (!header.ok() || *header != *fingerprint) {
      return Error{ErrorCode::failed_precondition,
                   options.out_dir + " holds a harvest of other inputs or settings (" + journal_path +
                       "); give another --out, or delete that folder to start again"};
    }
    records.erase(records.begin());
  }
  ModelPool pool(std::move(detectors), std::move(embedders), governor);
  Run run(options, pool, progress);
  run.summary.cpu_budget = cores;
  run.summary.model_workers = workers;
  run.resume_from(**journal, records, *fingerprint);
  VIGIL_RETURN_IF_ERROR(run.scan_all());
  HarvestSummary summary;
  VIGIL_RETURN_IF_ERROR(run.write_outputs(summary));
  return summary;
}

}  // namespace vigil
