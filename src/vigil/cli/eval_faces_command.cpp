// vigil eval faces: how well the face embedder separates people, and whether its ONNX
// conversion computes what face-api computes.
//
// Sample photos: every face in a photo is a different person (different-person pairs); the
// same face in a mirrored, 0.6x copy of the photo, detected and aligned again, is the same
// person (same-person pairs). The margin is the lowest same-person similarity minus the
// highest different-person one: above 0, one threshold separates them all.
// Video (Megamind.avi): faces tracked through the clip; pairs within a track at least 50
// frames apart are the same person, pairs of tracks seen in the same frame are different.
// Reference: the photo chips, rounded to bytes, through face-api in Node (TensorFlow.js CPU
// backend, tools/faceapi_reference.cjs) and through vigil's ONNX: cosine on every chip. Also
// batch 1 against batch 16 on the same chips.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "vigil/cli/commands.h"
#include "vigil/cli/eval_support.h"
#include "vigil/core/paths.h"
#include "vigil/infer/backend.h"
#include "vigil/source/ffmpeg_source.h"
#include "vigil/source/image_file.h"
#include "vigil/track/byte_tracker.h"
#include "vigil/vision/blazeface.h"
#include "vigil/vision/face_embedder.h"

#ifndef VIGIL_SOURCE_DIR
#define VIGIL_SOURCE_DIR "."
#endif

namespace vigil {

namespace {

nlohmann::json distribution(std::vector<float> v) {
  if (v.empty()) return {{"pairs", 0}};
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[static_cast<std::size_t>(std::lround(q * static_cast<double>(v.size() - 1)))]; };
  double sum = 0;
  for (float x : v) sum += x;
  return {{"pairs", v.size()}, {"min", v.front()},    {"p05", at(0.05)}, {"median", at(0.5)},
          {"p95", at(0.95)},   {"max", v.back()},     {"mean", sum / static_cast<double>(v.size())}};
}

// The chance that a same-person pair scores above a different-person pair (ROC AUC; ties
// count half): 1 separates them all, 0.5 is chance.
double separation(std::vector<float> same, std::vector<float> different) {
  if (same.empty() || different.empty()) return 0;
  std::sort(different.begin(), different.end());
  double wins = 0;
  for (float s : same) {
    const auto lo = std::lower_bound(different.begin(), different.end(), s);
    const auto hi = std::upper_bound(lo, different.end(), s);
    wins += static_cast<double>(lo - different.begin()) + 0.5 * static_cast<double>(hi - lo);
  }
  return wins / (static_cast<double>(same.size()) * static_cast<double>(different.size()));
}

float eye_distance(const Detection& d) {
  if (d.keypoint_count < 2) return d.bbox.width() * 0.4f;
  return std::hypot(d.keypoints[1].x - d.keypoints[0].x, d.keypoints[1].y - d.keypoints[0].y);
}

// Writes each chip (bytes, square RGB) to dir/name; false if a file cannot be written.
bool write_chips(const std::filesystem::path& dir, const std::vector<float>& chips, const std::vector<std::string>& names) {
  std::filesystem::create_directories(dir);
  const std::size_t chip_floats = names.empty() ? 0 : chips.size() / names.size();
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::ofstream f(dir / names[i], std::ios::binary);
    for (std::size_t k = 0; k < chip_floats; ++k) f.put(static_cast<char>(static_cast<unsigned char>(chips[i * chip_floats + k])));
    if (!f) return false;
  }
  return true;
}


}  // namespace

int eval_faces_command(const EvalFacesOptions& options) {
  auto detector = photo_face_detector(options.detector_path);
  if (!detector.ok()) return eval_fail(detector.error().message, 2);
  auto embedder = FaceEmbedder::create({options.embedder_path, 16});
  if (!embedder.ok()) return eval_fail(embedder.error().message, 2);
  auto single = FaceEmbedder::create({options.embedder_path, 1});
  if (!single.ok()) return eval_fail(single.error().message, 2);
  const FaceTemplate& chip_template = (*embedder)->face_template();
  const std::size_t chip_floats = static_cast<std::size_t>(chip_template.size) * static_cast<std::size_t>(chip_template.size) * 3;
  if (!options.reference_script.empty() && (*embedder)->family() != FaceEmbedder::Family::dlib) {
    return eval_fail("--reference compares with face-api's descriptor: " + options.embedder_path + " is another model", 2);
  }

  std::vector<float> same, different;
  std::vector<float> chips;  // photo chips (view A), rounded to bytes, for the reference
  std::vector<std::string> chip_names;
  nlohmann::json photos = nlohmann::json::array();
  FaceAligner aligner;
  std::vector<Detections> found;
  std::vector<Embedding> emb_a, emb_b;
  std::vector<FaceQuality> qualities;
  for (const std::string& path : options.photos) {
    auto a = read_image_file(path);
    if (!a.ok()) return eval_fail(a.error().message, 2);
    const double scale = 0.6;
    auto b = read_image_file(path, scale, true);
    if (!b.ok()) return eval_fail(b.error().message, 2);
    const Image* ia = &a->image;
    const Image* ib = &b->image;
    if (Status s = (*detector)->detect(std::span(&ia, 1), found); !s.ok()) return eval_fail(s.error().message);
    Detections faces_a;
    for (const Detection& d : found[0]) {
      if (eye_distance(d) >= options.min_eye_px) faces_a.push_back(d);
    }
    if (Status s = (*detector)->detect(std::span(&ib, 1), found); !s.ok()) return eval_fail(s.error().message);
    const Detections faces_b = found[0];
    // The same face in view B: view A's box mirrored and scaled, best IoU >= 0.5.
    std::vector<FaceInput> in_a, in_b;
    for (const Detection& d : faces_a) {
      in_a.push_back({ia, &d});
      const float w = static_cast<float>(a->image.width);
      const BBox expected{(w - d.bbox.x2) * static_cast<float>(scale), d.bbox.y1 * static_cast<float>(scale),
                          (w - d.bbox.x1) * static_cast<float>(scale), d.bbox.y2 * static_cast<float>(scale)};
      const Detection* best = nullptr;
      float best_iou = 0.5f;
      for (const Detection& e : faces_b) {
        if (const float o = iou(expected, e.bbox); o >= best_iou) best_iou = o, best = &e;
      }
      in_b.push_back({best ? ib : nullptr, best});
    }
    if (Status s = (*embedder)->embed(in_a, emb_a, qualities); !s.ok()) return eval_fail(s.error().message);
    // The matched faces of view B in one batch; twin[k] is the view-A face of B's k-th.
    std::vector<FaceInput> matched_b;
    std::vector<std::size_t> twin;
    for (std::size_t i = 0; i < in_b.size(); ++i) {
      if (!in_b[i].detection) continue;
      matched_b.push_back(in_b[i]);
      twin.push_back(i);
    }
    if (Status s = (*embedder)->embed(matched_b, emb_b, qualities); !s.ok()) return eval_fail(s.error().message);
    for (std::size_t k = 0; k < twin.size(); ++k) same.push_back(cosine(emb_a[twin[k]], emb_b[k]));
    const std::size_t matched = twin.size();
    for (std::size_t i = 0; i < emb_a.size(); ++i) {
      for (std::size_t j = i + 1; j < emb_a.size(); ++j) different.push_back(cosine(emb_a[i], emb_a[j]));
    }
    for (std::size_t i = 0; i < faces_a.size(); ++i) {
      const std::size_t at = chips.size();
      chips.resize(at + chip_floats);
      aligner.align(*ia, faces_a[i], chips.data() + at, chip_template);
      for (std::size_t k = at; k < chips.size(); ++k) chips[k] = std::clamp(std::round(chips[k]), 0.0f, 255.0f);
      chip_names.push_back(std::filesystem::path(path).stem().string() + "_face" + std::to_string(i) + ".rgb");
    }
    photos.push_back({{"photo", path}, {"faces", faces_a.size()}, {"mirrored_matches", matched}});
  }

  // Video: tracks through the clip.
  nlohmann::json video = nullptr;
  std::vector<float> video_same, video_different;
  if (!options.video.empty()) {
    SourceConfig sc;
    sc.type = SourceType::file;
    sc.url = options.video;
    auto source = FfmpegSource::open(sc, "eval");
    if (!source.ok()) return eval_fail(source.error().message, 2);
    ByteTracker tracker{TrackerConfig{}};
    std::vector<TrackedObject> tracks;
    std::vector<TrackEvent> events;
    struct Sample {
      std::uint64_t track = 0;
      std::uint64_t frame = 0;
      Embedding embedding{};
    };
    std::vector<Sample> samples;
    std::uint64_t frames = 0;
    int steps = 0;
    for (;;) {
      auto frame = (*source)->read();
      if (!frame.ok()) return eval_fail(frame.error().message);
      if (!*frame) break;
      ++steps;
      if ((frames++ % static_cast<std::uint64_t>(options.video_every)) != 0) continue;
      const Image* image = &(*frame)->image;
      if (Status s = (*detector)->detect(std::span(&image, 1), found); !s.ok()) return eval_fail(s.error().message);
      tracker.update(found[0], steps, tracks, events);
      steps = 0;
      std::vector<FaceInput> in;
      std::vector<std::uint64_t> ids;
      for (const Detection& d : found[0]) {
        if (d.track_id == 0 || eye_distance(d) < options.min_eye_px) continue;
        in.push_back({image, &d});
        ids.push_back(d.track_id);
      }
      if (in.empty()) continue;
      if (Status s = (*embedder)->embed(in, emb_a, qualities); !s.ok()) return eval_fail(s.error().message);
      for (std::size_t i = 0; i < in.size(); ++i) {
        samples.push_back({ids[i], frames - 1, emb_a[i]});
        for (std::size_t j = 0; j < i; ++j) video_different.push_back(cosine(emb_a[i], emb_a[j]));
      }
    }
    std::map<std::uint64_t, int> per_track;
    for (std::size_t i = 0; i < samples.size(); ++i) {
      ++per_track[samples[i].track];
      for (std::size_t j = 0; j < i; ++j) {
        if (samples[i].track == samples[j].track && samples[i].frame >= samples[j].frame + 50) {
          video_same.push_back(cosine(samples[i].embedding, samples[j].embedding));
        }
      }
    }
    video = {{"video", options.video},   {"frames", frames},
             {"embedded_faces", samples.size()}, {"tracks", per_track.size()},
             {"same_person", distribution(video_same)}, {"different_person", distribution(video_different)},
             {"auc", separation(video_same, video_different)}};
  }

  // Batch 1 against batch 16 on the same chips.
  std::vector<Embedding> batched, one_by_one;
  const std::size_t n = chip_names.size();
  if (Status s = (*embedder)->embed_chips(chips, n, batched); !s.ok()) return eval_fail(s.error().message);
  if (Status s = (*single)->embed_chips(chips, n, one_by_one); !s.ok()) return eval_fail(s.error().message);
  float batch_min = 1.0f;
  for (std::size_t i = 0; i < n; ++i) batch_min = std::min(batch_min, cosine(batched[i], one_by_one[i]));

  if (!options.chips_dir.empty() && !write_chips(options.chips_dir, chips, chip_names)) {  // for a person to look at
    return eval_fail(options.chips_dir + ": cannot write the chips");
  }

  nlohmann::json reference = nullptr;
  bool reference_ok = true;
  if (!options.reference_script.empty()) {
    const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("vigil-eval-" + std::to_string(::getpid()));
    if (!write_chips(dir, chips, chip_names)) {
      std::filesystem::remove_all(dir);
      return eval_fail(dir.string() + ": cannot write the chips");
    }
    const std::string node_path = data_dir() + "/node/node_modules";
    const std::string command = "NODE_PATH='" + node_path + "' node '" + options.reference_script + "' '" +
                                data_dir() + "/models/face-api' '" + dir.string() + "'";
    std::string output;
    if (FILE* pipe = ::popen(command.c_str(), "r")) {
      char buffer[65536];
      std::size_t got = 0;
      while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, got);
      const int rc = ::pclose(pipe);
      if (rc != 0) output.clear();
    }
    std::filesystem::remove_all(dir);
    nlohmann::json parsed = nlohmann::json::parse(output, nullptr, false);
    if (parsed.is_discarded() || !parsed.contains("descriptors")) {
      return eval_fail("reference: `" + command + "` gave no descriptors (run scripts/fetch_models.sh for the Node packages)");
    }
    float min_cos = 1.0f;
    std::size_t compared = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const auto& d = parsed["descriptors"][chip_names[i]];
      if (!d.is_array() || d.size() != batched[i].size()) return eval_fail("reference: no descriptor for " + chip_names[i]);
      Embedding e(d.size());
      for (std::size_t k = 0; k < d.size(); ++k) e[k] = d[k].get<float>();
      l2_normalise(e);
      min_cos = std::min(min_cos, cosine(e, batched[i]));
      ++compared;
    }
    reference_ok = compared == n && min_cos >= 0.999f;
    reference = {{"chips", compared}, {"min_cosine", min_cos}, {"backend", "tfjs-" + parsed.value("backend", std::string("?"))},
                 {"tfjs", parsed.value("tfjs", std::string("?"))}, {"faceapi", parsed.value("faceapi", std::string("?"))},
                 {"ok", reference_ok}};
  }

  nlohmann::json same_json = distribution(same), different_json = distribution(different);
  const float margin = same.empty() || different.empty()
                           ? 0.0f
                           : *std::min_element(same.begin(), same.end()) - *std::max_element(different.begin(), different.end());
  nlohmann::json out = {{"eval", "faces"},
                        {"embedder", options.embedder_path},
                        {"detector", options.detector_path},
                        {"photos", photos},
                        {"same_person", same_json},
                        {"different_person", different_json},
                        {"margin", margin},
                        {"auc", separation(same, different)},
                        {"video", video},
                        {"batch_vs_single_min_cosine", batch_min},
                        {"reference", reference}};
  if (options.json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("%s\n", out.dump(2).c_str());
  }
  return margin > 0 && reference_ok && batch_min >= 0.9999f ? 0 : 1;
}

}  // namespace vigil
