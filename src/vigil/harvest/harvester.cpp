#include "vigil/harvest/harvester.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
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
#include "vigil/harvest/shot_cut.h"
#include "vigil/identity/agglomerative.h"
#include "vigil/infer/backend.h"
#include "vigil/pipeline/face_stage.h"
#include "vigil/pipeline/model_factory.h"
#include "vigil/sink/event_store.h"
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
  BBox first_bbox, last_bbox;
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

// Who a track is.
struct Who {
  std::string label;       // the gallery name, or person-N
  bool known = false;      // a gallery name
  std::string best_match;  // with a gallery: the closest name (taken or not)
  float similarity = 0;    // to best_match
  float margin = 0;        // over the second-closest name (1 when there is none)
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

  void set_gallery(const Gallery* gallery) { gallery_ = gallery; }

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

  Status write_outputs();
  Status write_faces(std::string& text);
  Status write_tracks(const std::vector<const TrackRecord*>& tracks, const std::vector<Who>& who, std::string& text,
                      json& identities, std::vector<std::shared_ptr<const std::vector<std::uint8_t>>>& thumbs);
  Status write_manifest();
  std::vector<Who> identify(const std::vector<const TrackRecord*>& tracks) const;
  cv::Mat chip_bgr(const KeptFace& f) const;
  // The outputs to the storage, the manifest last.
  Status upload(Uploader& uploader);
  void finish() {
    phase_ = "done";
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    summary.cpu_seconds = process_cpu_seconds() - cpu_start_;
    report(true);
  }

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
  TrackerConfig tracker_config() const {
    TrackerConfig c;
    c.lost_frames = options_.track_buffer;
    return c;
  }
  Status write_store(const std::vector<const TrackRecord*>& tracks, const std::vector<Who>& who,
                     const std::vector<std::shared_ptr<const std::vector<std::uint8_t>>>& thumbs);
  void report(bool force);
  Status write_output(const std::string& name, std::string_view bytes, const char* content_type);

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
  std::optional<ByteTracker> tracker_;                // the current input's (the current shot's)
  ShotCutDetector shots_{options_.shot_cut_threshold};
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
  const char* phase_ = nullptr;
  std::map<std::uint64_t, const KeptFace*> face_by_id_;  // embedded faces, once scanning is over
  const Gallery* gallery_ = nullptr;  // "write", "done" once scanning is over  // a journal record that does not fit, found when submitting
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_report_{};
  double cpu_start_ = process_cpu_seconds();
  ProgressMeter meter_;
  std::vector<UploadFile> written_;  // every output, in the order written
  std::uint64_t files_uploaded_ = 0, files_to_upload_ = 0;
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
  tracker_.emplace(tracker_config());
  global_ids_.clear();
  shots_.reset();
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
    if (options_.shot_cut_threshold > 0 && shots_.cut(frame.image)) {
      // A new shot: whoever is where a track was is someone else now. Every track ends here.
      ++summary.shot_cuts;
      for (std::uint64_t id : selector_.open_tracks()) end_track(id);
      tracker_.emplace(tracker_config());
      global_ids_.clear();
    }
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
        t.first_bbox = d.bbox;
      }
      TrackRecord& t = tracks_[it->second];
      t.last_frame = frame.seq;
      t.last_ts = ts;
      t.last_bbox = d.bbox;
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
  p.files_uploaded = files_uploaded_;
  p.files_to_upload = files_to_upload_;
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

// The tracks and who they are in DIR/vigil.db, the live engine's event store (same schema,
// readable by its API): per track, track_started at its first face, identity_matched (the
// person or gallery name, with the thumbnail) and track_removed at its last face. `camera` is
// the input's file name and `at` the time into the input (from the Unix epoch). Written whole
// under a temporary name, then renamed, like every output.
Status Run::write_store(const std::vector<const TrackRecord*>& tracks, const std::vector<Who>& who,
                        const std::vector<std::shared_ptr<const std::vector<std::uint8_t>>>& thumbs) {
  namespace fs = std::filesystem;
  const fs::path dir(options_.out_dir);
  const std::string temporary = (dir / (".vigil-tmp-store-" + std::to_string(::getpid()) + ".db")).string();
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(temporary + suffix, ec);
  EventStoreOptions o;
  o.path = temporary;
  o.max_age_s = 0;  // a recording's events are as old as the recording
  o.max_bytes = 0;
  o.queue_capacity = 3 * tracks.size() + 1;
  // Named after the harvest, not the process: a rerun writes the same bytes (and uploads none).
  const std::string fingerprint = fingerprint_.dump();
  o.run = "harvest-" + sha256_hex(std::span(reinterpret_cast<const std::uint8_t*>(fingerprint.data()), fingerprint.size())).substr(0, 16);
  {
    auto store = EventStore::open(o);
    if (!store.ok()) return with_context(store.error(), "vigil.db");
    const auto at = [](double ts) {
      return SystemTime(std::chrono::duration_cast<SystemTime::duration>(std::chrono::duration<double>(ts)));
    };
    std::uint64_t id = 0;
    for (std::size_t i = 0; i < tracks.size(); ++i) {
      const TrackRecord& t = *tracks[i];
      const KeptFace& best = *face_by_id_.at(t.best_face);
      Event e;
      e.camera = fs::path(options_.inputs[t.input]).filename().string();
      e.track_id = t.id;
      e.id = ++id;
      e.kind = EventKind::track_started;
      e.at = at(t.first_ts);
      e.frame_seq = t.first_frame;
      e.bbox = t.first_bbox;
      (*store)->offer(e);
      e.id = ++id;
      e.kind = EventKind::identity_matched;
      e.at = at(best.candidate.ts);
      e.frame_seq = best.frame;
      e.bbox = best.bbox;
      e.detail = who[i].label;
      e.known = who[i].known;
      e.similarity = who[i].similarity;
      e.margin = who[i].margin;
      (*store)->offer(e, thumbs[i]);
      e.id = ++id;
      e.kind = EventKind::track_removed;
      e.at = at(t.last_ts);
      e.frame_seq = t.last_frame;
      e.bbox = t.last_bbox;
      e.detail.clear();
      (*store)->offer(e);
    }
    (*store)->flush();
    if ((*store)->written() != id) {
      return Error{ErrorCode::unavailable, "vigil.db: " + std::to_string((*store)->written()) + " of " + std::to_string(id) +
                                               " records written (is the disk full?)"};
    }
  }
  fs::rename(temporary, dir / "vigil.db", ec);
  if (ec) return Error{ErrorCode::unavailable, "vigil.db: cannot rename " + temporary + ": " + ec.message()};
  return {};
}

// The aligned chip of a kept face as a BGR image, for its crop and thumbnail files.
cv::Mat Run::chip_bgr(const KeptFace& f) const {
  const int size = face_template_.size;
  cv::Mat rgb(size, size, CV_8UC3, const_cast<std::uint8_t*>(f.chip.data()));
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

// Who each track is: a gallery name when its descriptor matches one by threshold and margin,
// else an anonymous person-N from clustering the tracks no name took.
std::vector<Who> Run::identify(const std::vector<const TrackRecord*>& tracks) const {
  std::vector<Who> who(tracks.size());
  std::vector<std::size_t> anonymous;
  std::vector<Embedding> anonymous_means;
  for (std::size_t i = 0; i < tracks.size(); ++i) {
    Who& w = who[i];
    const Embedding mean = descriptor(*tracks[i]);
    if (gallery_ && gallery_->people() > 0) {
      const Gallery::Ranking r = gallery_->rank(mean);
      w.best_match = gallery_->names()[static_cast<std::size_t>(r.best)];
      w.similarity = r.best_similarity;
      w.margin = r.second < 0 ? 1.0f : r.best_similarity - r.second_similarity;
      if (w.similarity >= options_.gallery_threshold && w.margin >= options_.gallery_margin) {
        w.label = w.best_match;
        w.known = true;
      }
    }
    if (!w.known) {
      anonymous.push_back(i);
      anonymous_means.push_back(mean);
    }
  }
  const std::vector<int> labels = cluster_average_linkage(anonymous_means, options_.cluster_threshold);
  for (std::size_t a = 0; a < anonymous.size(); ++a) who[anonymous[a]].label = "person-" + std::to_string(labels[a] + 1);
  return who;
}

// faces.jsonl's text, and each embedded face's crop.
Status Run::write_faces(std::string& text) {
  for (const FaceRecord& r : faces_) {
    const KeptFace& f = r.face;
    face_by_id_[f.candidate.face_id] = &f;
    json kp = json::array();
    for (const Point2& p : f.keypoints) kp.push_back({p.x, p.y});
    text += json{{"face_id", f.candidate.face_id},
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
    if (!cv::imencode(".png", chip_bgr(f), png)) return Error{ErrorCode::internal, "cannot encode a crop"};
    VIGIL_RETURN_IF_ERROR(write_output("crops/" + std::to_string(f.candidate.face_id) + ".png",
                                       std::string_view(reinterpret_cast<const char*>(png.data()), png.size()), "image/png"));
  }
  return {};
}

// tracks.jsonl's text and identities.json's people (in order of their first track), and each
// track's thumbnail (kept in `thumbs` for vigil.db).
Status Run::write_tracks(const std::vector<const TrackRecord*>& tracks, const std::vector<Who>& who, std::string& text,
                         json& identities, std::vector<std::shared_ptr<const std::vector<std::uint8_t>>>& thumbs) {
  std::vector<std::string> people;
  std::vector<bool> people_known;
  std::map<std::string, std::size_t> person_index;
  for (const Who& w : who) {
    if (person_index.try_emplace(w.label, people.size()).second) {
      people.push_back(w.label);
      people_known.push_back(w.known);
    }
  }
  std::vector<json> members(people.size(), json::array());
  std::vector<std::uint64_t> person_faces(people.size(), 0);
  for (std::size_t i = 0; i < tracks.size(); ++i) {
    const TrackRecord* t = tracks[i];
    const Who& w = who[i];
    json line = {{"track_id", t->id},           {"input", t->input},       {"first_frame", t->first_frame},
                 {"last_frame", t->last_frame}, {"first_ts", t->first_ts}, {"last_ts", t->last_ts},
                 {"faces_detected", t->faces_detected}, {"embedded_faces", t->embedded}, {"best_face", t->best_face},
                 {"person", w.label},           {"known", w.known}};
    if (!w.best_match.empty()) {  // with a gallery: the closest name, taken or not
      line["gallery"] = {{"best", w.best_match}, {"similarity", w.similarity}, {"margin", w.margin}};
    }
    text += line.dump() + "\n";
    const std::size_t person = person_index.at(w.label);
    members[person].push_back(t->id);
    person_faces[person] += t->embedded.size();
    auto jpeg = std::make_shared<std::vector<std::uint8_t>>();
    if (!cv::imencode(".jpg", chip_bgr(*face_by_id_.at(t->best_face)), *jpeg, {cv::IMWRITE_JPEG_QUALITY, 90})) {
      return Error{ErrorCode::internal, "cannot encode a thumbnail"};
    }
    VIGIL_RETURN_IF_ERROR(write_output("thumbs/" + std::to_string(t->id) + ".jpg",
                                       std::string_view(reinterpret_cast<const char*>(jpeg->data()), jpeg->size()), "image/jpeg"));
    thumbs.push_back(std::move(jpeg));
  }
  identities = json::array();
  for (std::size_t p = 0; p < people.size(); ++p) {
    identities.push_back({{"id", people[p]}, {"known", people_known[p]}, {"tracks", members[p]}, {"faces", person_faces[p]}});
  }
  summary.people = people.size();
  return {};
}

Status Run::write_outputs() {
  namespace fs = std::filesystem;
  phase_ = "write";
  report(true);
  const fs::path dir(options_.out_dir);
  std::error_code ec;
  fs::create_directories(dir / "crops", ec);
  fs::create_directories(dir / "thumbs", ec);
  if (ec) return Error{ErrorCode::unavailable, "cannot create " + options_.out_dir + ": " + ec.message()};
  std::vector<const TrackRecord*> embedded_tracks;  // the tracks with embedded faces become people
  for (const auto& [id, t] : tracks_) {
    if (!t.embedded.empty()) embedded_tracks.push_back(&t);
  }
  const std::vector<Who> who = identify(embedded_tracks);
  std::string faces_text, tracks_text;
  json identities;
  std::vector<std::shared_ptr<const std::vector<std::uint8_t>>> thumbs;
  VIGIL_RETURN_IF_ERROR(write_faces(faces_text));
  VIGIL_RETURN_IF_ERROR(write_tracks(embedded_tracks, who, tracks_text, identities, thumbs));
  VIGIL_RETURN_IF_ERROR(write_output("faces.jsonl", faces_text, "application/x-ndjson"));
  VIGIL_RETURN_IF_ERROR(write_output("tracks.jsonl", tracks_text, "application/x-ndjson"));
  VIGIL_RETURN_IF_ERROR(write_output("embeddings.npy", npy_bytes(embeddings_, faces_.size(), dim_), "application/octet-stream"));
  VIGIL_RETURN_IF_ERROR(write_output("identities.json", json{{"people", identities}}.dump(1) + "\n", "application/json"));
  summary.tracks = embedded_tracks.size();
  VIGIL_RETURN_IF_ERROR(write_store(embedded_tracks, who, thumbs));
  written_.push_back({(dir / "vigil.db").string(), "vigil.db", "application/vnd.sqlite3"});
  return write_manifest();
}

// manifest.json: inputs and models with their SHA-256, settings, counts, timings. A rerun (a
// resumed run, or one that only uploads) keeps the manifest of the run that first wrote it when
// nothing but the timings and what was resumed differ: the manifest stays the same bytes, and is
// not uploaded again.
Status Run::write_manifest() {
  const std::filesystem::path dir(options_.out_dir);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  summary.cpu_seconds = process_cpu_seconds() - cpu_start_;
  const json manifest = {
      {"inputs", fingerprint_["inputs"]},
      {"models",
       {{"detector",
         {{"kind", options_.detector.kind}, {"path", options_.detector.model_path()}, {"sha256", fingerprint_["detector"]["sha256"]}}},
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
        {"shot_cuts", summary.shot_cuts},
        {"tracks", summary.tracks},
        {"people", summary.people}}},
      {"resumed", {{"frames", summary.resumed_frames}, {"embedder_calls", summary.resumed_embedder_calls}}},
      {"timings",
       {{"seconds", summary.seconds},
        {"cpu_seconds", summary.cpu_seconds},
        {"cpu_cores", summary.seconds > 0 ? summary.cpu_seconds / summary.seconds : 0.0}}}};
  // A rerun (a resumed run, or one that only uploads) keeps the manifest of the run that first
  // wrote it when nothing but the timings and what was resumed differ: the manifest stays the
  // same bytes, and is not uploaded again.
  const auto same_but_timings = [&](json other) {
    json mine = manifest;
    for (json* j : {&mine, &other}) {
      j->erase("timings");
      j->erase("resumed");
    }
    return mine == other;
  };
  std::ifstream previous_file(dir / "manifest.json", std::ios::binary);
  const std::string previous((std::istreambuf_iterator<char>(previous_file)), std::istreambuf_iterator<char>());
  const bool keep = json::accept(previous) && same_but_timings(json::parse(previous));
  if (keep) {
    written_.push_back({(dir / "manifest.json").string(), "manifest.json", "application/json"});
  } else {
    VIGIL_RETURN_IF_ERROR(write_output("manifest.json", manifest.dump(1) + "\n", "application/json"));
  }
  return {};
}

Status Run::write_output(const std::string& name, std::string_view bytes, const char* content_type) {
  const std::string path = (std::filesystem::path(options_.out_dir) / name).string();
  VIGIL_RETURN_IF_ERROR(write_file_atomically(path, bytes));
  written_.push_back({path, name, content_type});
  return {};
}

Status Run::upload(Uploader& uploader) {
  phase_ = "upload";
  files_to_upload_ = written_.size();
  report(true);
  std::vector<UploadFile> first(written_.begin(), written_.end()), last;
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

// The detector's settings that change what it returns, by kind.
json detector_settings(const ModelConfig& m) {
  const auto common = [](const auto& c) {
    return json{{"score_threshold", c.score_threshold}, {"nms_iou", c.nms_iou}, {"max_batch", c.max_batch},
                {"backend", static_cast<int>(c.backend)}, {"precision", static_cast<int>(c.precision)}};
  };
  if (m.kind == "scrfd") {
    json j = common(m.scrfd);
    j["input_size"] = m.scrfd.input_size;
    return j;
  }
  json j = common(m.blazeface);
  j["input_size"] = m.blazeface.input_size;
  j["nms"] = static_cast<int>(m.blazeface.nms);
  j["range"] = static_cast<int>(m.blazeface.range);
  return j;
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
  auto detector = file_sha256(o.detector.model_path());
  if (!detector.ok()) return with_context(detector.error(), "detector");
  auto embedder = file_sha256(o.embedder.model_path);
  if (!embedder.ok()) return with_context(embedder.error(), "embedder");
  const json f = {{"version", 3},
                  {"inputs", inputs},
                  {"detector", {{"kind", o.detector.kind}, {"sha256", *detector}, {"settings", detector_settings(o.detector)}}},
                  {"embedder",
                   {{"sha256", *embedder},
                    {"max_batch", o.embedder.max_batch},
                    {"backend", static_cast<int>(o.embedder.backend)},
                    {"precision", static_cast<int>(o.embedder.precision)}}},
                  {"stride", o.stride},
                  {"track_buffer", o.track_buffer},
                  {"shot_cut_threshold", o.shot_cut_threshold},
                  {"select", {{"best_k", o.select.best_k}, {"every_s", o.select.every_s}, {"all_faces", o.select.all_faces}}}};
  return f.dump();
}

// The checks that need no model: inputs, the output folder (writable; a killed run's
// temporaries removed), the gallery folder, the upload target.
Status check_before_work(const HarvestOptions& options) {
  if (options.inputs.empty()) return Error{ErrorCode::invalid_argument, "no input videos"};
  if (options.stride < 1) return Error{ErrorCode::invalid_argument, "--stride must be 1 or more"};
  if (options.cpu_budget < 0) return Error{ErrorCode::invalid_argument, "--cpu-budget must be positive"};
  if (!options.detector.finds_faces()) {
    return Error{ErrorCode::invalid_argument,
                 "the detector of a harvest finds faces with keypoints (blazeface or scrfd), not " + options.detector.kind};
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

// One detector and one embedder per model worker, each on one intra-op thread.
Status make_models(const HarvestOptions& options, int workers, std::vector<std::unique_ptr<Detector>>& detectors,
                   std::vector<std::unique_ptr<FaceEmbedder>>& embedders) {
  set_inference_threads(1);  // OpenCV DNN's count is process-wide
  ModelConfig detector_config = options.detector;
  FaceEmbedderConfig embedder_config = options.embedder;
  detector_config.set_threads(1);
  embedder_config.threads = 1;
  for (int w = 0; w < workers; ++w) {
    auto detector = make_detector(detector_config);
    if (!detector.ok()) return with_context(detector.error(), "detector");
    auto embedder = FaceEmbedder::create(embedder_config);
    if (!embedder.ok()) return with_context(embedder.error(), "embedder");
    detectors.push_back(std::move(detector).value());
    embedders.push_back(std::move(embedder).value());
  }
  return {};
}

// The journal: a new one starts with this run's fingerprint; one left by a killed run of the
// same inputs and settings is replayed (`records`: its records after the header).
Result<std::unique_ptr<Journal>> open_journal(const HarvestOptions& options, const std::string& fingerprint,
                                              std::vector<std::string>& records) {
  const std::string journal_path = (std::filesystem::path(options.out_dir) / "harvest.journal").string();
  auto journal = Journal::open(journal_path, records);
  if (!journal.ok()) return journal.error();
  if (records.empty()) {
    VIGIL_RETURN_IF_ERROR((*journal)->append(encode_header(fingerprint)));
    return journal;
  }
  auto header = decode_header(records.front());
  if (!header.ok() || *header != fingerprint) {
    return Error{ErrorCode::failed_precondition, options.out_dir + " holds a harvest of other inputs or settings (" +
                                                     journal_path + "); give another --out, or delete that folder to start again"};
  }
  records.erase(records.begin());
  return journal;
}

// The outputs to the storage; what earlier runs sent comes from their journal records, and
// this run's are appended to it.
Status upload_outputs(const HarvestOptions& options, const std::vector<std::string>& records, Journal& journal,
                      CpuGovernor& governor, Run& run) {
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
  return run.upload(uploader);
}

}  // namespace

Result<HarvestSummary> harvest(const HarvestOptions& options, const HarvestProgressFn& progress) {
  VIGIL_RETURN_IF_ERROR(check_before_work(options));
  auto fingerprint = harvest_fingerprint(options);
  if (!fingerprint.ok()) return fingerprint.error();
  const double cores = options.cpu_budget > 0 ? options.cpu_budget : static_cast<double>(hardware_cores());
  const int workers = std::max(1, static_cast<int>(cores));  // one per whole core of the budget
  std::vector<std::unique_ptr<Detector>> detectors;
  std::vector<std::unique_ptr<FaceEmbedder>> embedders;
  VIGIL_RETURN_IF_ERROR(make_models(options, workers, detectors, embedders));
  CpuGovernor governor(cores, true);
  Gallery gallery;
  std::vector<std::string> gallery_warnings;
  if (!options.gallery.empty()) {  // embedded with the first worker's models before the workers start
    auto loaded = load_gallery(options.gallery, *detectors.front(), *embedders.front(), gallery_warnings);
    if (!loaded.ok()) return loaded.error();
    gallery = std::move(loaded).value();
  }
  std::vector<std::string> records;
  auto journal = open_journal(options, *fingerprint, records);
  if (!journal.ok()) return journal.error();
  ModelPool pool(std::move(detectors), std::move(embedders), governor);
  Run run(options, pool, progress);
  run.set_gallery(options.gallery.empty() ? nullptr : &gallery);
  run.summary.warnings = gallery_warnings;
  run.summary.cpu_budget = cores;
  run.summary.model_workers = workers;
  run.resume_from(**journal, records, *fingerprint);
  VIGIL_RETURN_IF_ERROR(run.scan_all());
  VIGIL_RETURN_IF_ERROR(run.write_outputs());
  if (options.upload) VIGIL_RETURN_IF_ERROR(upload_outputs(options, records, **journal, governor, run));
  run.finish();
  return run.summary;
}

}  // namespace vigil
