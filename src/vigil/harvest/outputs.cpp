#include "vigil/harvest/outputs.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "vigil/core/atomic_file.h"
#include "vigil/harvest/checkpoint.h"
#include "vigil/harvest/npy.h"
#include "vigil/identity/agglomerative.h"
#include "vigil/sink/event_store.h"

namespace vigil {

using json = nlohmann::json;

namespace {

// Named after the harvest, not the process: a rerun writes the same bytes (and uploads none).
std::string run_name(const std::string& header) {
  return "harvest-" + sha256_hex(std::span(reinterpret_cast<const std::uint8_t*>(header.data()), header.size())).substr(0, 16);
}

// The inputs as the journal's header and the manifest name them.
json inputs_json(const std::vector<HarvestFingerprint::File>& files) {
  json inputs = json::array();
  for (const HarvestFingerprint::File& f : files) inputs.push_back({{"path", f.path}, {"sha256", f.sha256}});
  return inputs;
}

// A model in the fingerprint: its kind, its file's SHA-256 and the settings that change what
// it returns (the same fields for every kind).
json model_fingerprint(const ModelConfig& m, const std::string& sha256) {
  const ModelSettings& s = m.settings;
  return json{{"kind", m.kind},
              {"sha256", sha256},
              {"settings",
               {{"input_size", s.input_size},
                {"score_threshold", s.score_threshold},
                {"nms_iou", s.nms_iou},
                {"nms", static_cast<int>(s.nms)},
                {"max_batch", s.max_batch},
                {"backend", static_cast<int>(s.backend)},
                {"precision", static_cast<int>(s.precision)}}}};
}

}  // namespace

// What makes a journal this run's: the inputs' bytes, the models' bytes and every setting that
// changes what the models are given or what they return. (cluster_threshold only regroups
// tracks at the end, so a resumed run may change it.)
Result<HarvestFingerprint> harvest_fingerprint(const HarvestOptions& o) {
  HarvestFingerprint f;
  for (const std::string& in : o.inputs) {
    auto sha = file_sha256(in);
    if (!sha.ok()) return sha.error();
    f.inputs.push_back({in, *sha});
  }
  auto detector = file_sha256(o.detector.model_path());
  if (!detector.ok()) return with_context(detector.error(), "detector");
  auto embedder = file_sha256(o.embedder.model_path());
  if (!embedder.ok()) return with_context(embedder.error(), "embedder");
  f.detector_sha256 = *detector;
  f.embedder_sha256 = *embedder;
  f.text = json{{"version", 4},
                {"inputs", inputs_json(f.inputs)},
                {"detector", model_fingerprint(o.detector, f.detector_sha256)},
                {"embedder", model_fingerprint(o.embedder, f.embedder_sha256)},
                {"stride", o.stride},
                {"track_buffer", o.track_buffer},
                {"shot_cut_threshold", o.shot_cut_threshold},
                {"select", {{"best_k", o.select.best_k}, {"every_s", o.select.every_s}, {"all_faces", o.select.all_faces}}}}
               .dump();
  return f;
}

HarvestOutputs::HarvestOutputs(const HarvestOptions& options, HarvestFingerprint fingerprint, const Gallery* gallery,
                               std::string embedder_model, std::size_t embedder_dim)
    : options_(options),
      fingerprint_(std::move(fingerprint)),
      run_(run_name(fingerprint_.text)),
      gallery_(gallery),
      embedder_model_(std::move(embedder_model)),
      embedder_dim_(embedder_dim) {}

// What a track looks like to the clustering: the mean of its best faces' embeddings (the
// best_k by quality, as the selector ranks them). Blurred, turned or half-hidden faces say
// little about who it is, and with --all-faces they would outnumber the good ones; taking the
// same best faces either way gives --all-faces the same people as the default.
Embedding HarvestOutputs::descriptor(const FaceTracks& faces, const TrackRecord& t) const {
  std::vector<TrackRecord::Embedded> best = t.rows;
  std::sort(best.begin(), best.end(), [](const auto& a, const auto& b) {
    return a.quality > b.quality || (a.quality == b.quality && a.face_id < b.face_id);
  });
  if (options_.select.best_k > 0 && best.size() > static_cast<std::size_t>(options_.select.best_k)) {
    best.resize(static_cast<std::size_t>(options_.select.best_k));
  }
  const std::size_t dim = faces.dim();
  Embedding sum(dim);
  for (const auto& b : best) {
    for (std::size_t v = 0; v < dim; ++v) sum[v] += faces.embeddings()[b.row * dim + v];
  }
  return l2_normalised(sum);
}

// The tracks and who they are in DIR/vigil.db, the live engine's event store (same schema,
// readable by its API): per track, track_started at its first face, identity_matched (the
// person or gallery name, with the thumbnail) and track_removed at its last face. `camera` is
// the input's file name and `at` the time into the input (from the Unix epoch). Written whole
// under a temporary name, then renamed, like every output.
Status HarvestOutputs::write_store(const std::vector<const TrackRecord*>& tracks, const std::vector<Who>& who, const Thumbs& thumbs) {
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
  o.run = run_;
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

// A kept face's aligned chip encoded as an image file (".png" or ".jpg"); empty on failure.
std::vector<std::uint8_t> HarvestOutputs::chip_image(const KeptFace& f, const char* extension, std::vector<int> params) const {
  cv::Mat rgb(chip_size_, chip_size_, CV_8UC3, const_cast<std::uint8_t*>(f.chip.data()));
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<std::uint8_t> bytes;
  if (!cv::imencode(extension, bgr, bytes, params)) bytes.clear();
  return bytes;
}

// Who each track is: a gallery name when its descriptor matches one by threshold and margin,
// else an anonymous person-N from clustering the tracks no name took.
std::vector<Who> HarvestOutputs::identify(const FaceTracks& faces, const std::vector<const TrackRecord*>& tracks) const {
  std::vector<Who> who(tracks.size());
  std::vector<std::size_t> anonymous;
  std::vector<Embedding> anonymous_means;
  for (std::size_t i = 0; i < tracks.size(); ++i) {
    Who& w = who[i];
    const Embedding mean = descriptor(faces, *tracks[i]);
    if (gallery_ && gallery_->people() > 0) {
      const Gallery::Ranking r = gallery_->rank(mean);
      w.best_match = gallery_->names()[static_cast<std::size_t>(r.best)];
      w.similarity = r.best_similarity;
      w.margin = r.second < 0 ? 1.0f : r.best_similarity - r.second_similarity;
      if (w.similarity >= options_.gallery_threshold.value() && w.margin >= options_.gallery_margin.value()) {
        w.label = w.best_match;
        w.known = true;
      }
    }
    if (!w.known) {
      anonymous.push_back(i);
      anonymous_means.push_back(mean);
    }
  }
  const std::vector<int> labels = cluster_average_linkage(anonymous_means, options_.cluster_threshold.value());
  for (std::size_t a = 0; a < anonymous.size(); ++a) who[anonymous[a]].label = "person-" + std::to_string(labels[a] + 1);
  return who;
}

// faces.jsonl's text, and each embedded face's crop.
Status HarvestOutputs::write_faces(const FaceTracks& faces, std::string& text) {
  for (const FaceRecord& r : faces.faces()) {
    const KeptFace& f = r.face;
    face_by_id_[f.candidate.face_id] = &f;
    json kp = json::array();
    for (const Point2& p : f.keypoints) kp.push_back({p.x, p.y});
    text += json{{"face_id", f.candidate.face_id},
                 {"track_id", f.candidate.track_id},
                 {"input", r.input},
                 {"frame", f.frame},
                 {"ts", f.candidate.ts},
                 {"bbox", {f.bbox.x1, f.bbox.y1, f.bbox.x2, f.bbox.y2}},
                 {"keypoints", kp},
                 {"quality", f.candidate.quality},
                 {"row", r.row}}
                .dump() +
            "\n";
    const std::vector<std::uint8_t> png = chip_image(f, ".png", {});
    if (png.empty()) return Error{ErrorCode::internal, "cannot encode a crop"};
    VIGIL_RETURN_IF_ERROR(write_output("crops/" + std::to_string(f.candidate.face_id) + ".png",
                                       std::string_view(reinterpret_cast<const char*>(png.data()), png.size()), "image/png"));
  }
  return {};
}

// tracks.jsonl's text and identities.json's people (in order of their first track), and each
// track's thumbnail (kept in `thumbs` for vigil.db).
Status HarvestOutputs::write_tracks(const std::vector<const TrackRecord*>& tracks, const std::vector<Who>& who, std::string& text,
                                    std::string& identities_text, Thumbs& thumbs, HarvestSummary& summary) {
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
    auto jpeg = std::make_shared<std::vector<std::uint8_t>>(chip_image(*face_by_id_.at(t->best_face), ".jpg", {cv::IMWRITE_JPEG_QUALITY, 90}));
    if (jpeg->empty()) return Error{ErrorCode::internal, "cannot encode a thumbnail"};
    VIGIL_RETURN_IF_ERROR(write_output("thumbs/" + std::to_string(t->id) + ".jpg",
                                       std::string_view(reinterpret_cast<const char*>(jpeg->data()), jpeg->size()), "image/jpeg"));
    thumbs.push_back(std::move(jpeg));
  }
  json identities = json::array();
  for (std::size_t p = 0; p < people.size(); ++p) {
    identities.push_back({{"id", people[p]}, {"known", people_known[p]}, {"tracks", members[p]}, {"faces", person_faces[p]}});
  }
  identities_text = json{{"embedder", embedder_model_}, {"people", identities}}.dump(1) + "\n";
  summary.people = people.size();
  return {};
}

Status HarvestOutputs::write(const FaceTracks& faces, HarvestSummary& summary) {
  namespace fs = std::filesystem;
  const fs::path dir(options_.out_dir);
  std::error_code ec;
  fs::create_directories(dir / "crops", ec);
  fs::create_directories(dir / "thumbs", ec);
  if (ec) return Error{ErrorCode::unavailable, "cannot create " + options_.out_dir + ": " + ec.message()};
  std::vector<const TrackRecord*> embedded_tracks;  // the tracks with embedded faces become people
  for (const auto& [id, t] : faces.tracks()) {
    if (!t.embedded.empty()) embedded_tracks.push_back(&t);
  }
  const std::vector<Who> who = identify(faces, embedded_tracks);
  std::string faces_text, tracks_text;
  std::string identities;
  Thumbs thumbs;
  chip_size_ = faces.chip_size();
  VIGIL_RETURN_IF_ERROR(write_faces(faces, faces_text));
  VIGIL_RETURN_IF_ERROR(write_tracks(embedded_tracks, who, tracks_text, identities, thumbs, summary));
  VIGIL_RETURN_IF_ERROR(write_output("faces.jsonl", faces_text, "application/x-ndjson"));
  VIGIL_RETURN_IF_ERROR(write_output("tracks.jsonl", tracks_text, "application/x-ndjson"));
  VIGIL_RETURN_IF_ERROR(write_output("embeddings.npy", npy_bytes(faces.embeddings(), faces.faces().size(), faces.dim()), "application/octet-stream"));
  VIGIL_RETURN_IF_ERROR(write_output("identities.json", identities, "application/json"));
  summary.tracks = embedded_tracks.size();
  VIGIL_RETURN_IF_ERROR(write_store(embedded_tracks, who, thumbs));
  written_.push_back({(dir / "vigil.db").string(), "vigil.db", "application/vnd.sqlite3"});
  return {};
}

// manifest.json: inputs and models with their SHA-256, settings, counts, timings. A rerun (a
// resumed run, or one that only uploads) keeps the manifest of the run that first wrote it when
// nothing but the timings and what was resumed differ: the manifest stays the same bytes, and is
// not uploaded again.
Status HarvestOutputs::write_manifest(const HarvestSummary& summary) {
  const std::filesystem::path dir(options_.out_dir);
  const json manifest = {
      {"inputs", inputs_json(fingerprint_.inputs)},
      {"models",
       {{"detector",
         {{"kind", options_.detector.kind}, {"path", options_.detector.model_path()}, {"sha256", fingerprint_.detector_sha256}}},
        {"embedder",
         {{"kind", options_.embedder.kind},
          {"model", embedder_model_},
          {"dim", embedder_dim_},
          {"path", options_.embedder.model_path()},
          {"sha256", fingerprint_.embedder_sha256}}}}},
      {"settings",
       {{"stride", options_.stride},
        {"best_k", options_.select.best_k},
        {"every_s", options_.select.every_s},
        {"all_faces", options_.select.all_faces},
        {"cluster_threshold", options_.cluster_threshold.value()},
        {"gallery_threshold", options_.gallery_threshold.value()},
        {"gallery_margin", options_.gallery_margin.value()},
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

Status HarvestOutputs::write_output(const std::string& name, std::string_view bytes, const char* content_type) {
  const std::string path = (std::filesystem::path(options_.out_dir) / name).string();
  VIGIL_RETURN_IF_ERROR(write_file_atomically(path, bytes));
  written_.push_back({path, name, content_type});
  return {};
}

}  // namespace vigil
