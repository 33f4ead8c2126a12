// vigil eval people: how a people model (MoveNet MultiPose by default) with the live engine's
// tracker sees the people of a video, checked against a second, independent detector: OpenCV's
// HOG people detector (Dalal & Triggs; its default SVM), run on every N-th frame of a separate
// decode of the same file.
//
// There is no ground truth here, so the report is agreement, not accuracy:
//   - frames with people, by each detector, and the frames where they agree (both see someone
//     or both see no one);
//   - boxes: HOG boxes that a model detection overlaps (IoU >= --iou) and model detections
//     that a HOG box overlaps, each as a share;
//   - the model's tracks (count, mean length in frames);
//   - identity: HOG boxes linked from sampled frame to sampled frame by overlap form
//     reference identities, and the model's tracks are scored against them as the MOT
//     benchmarks do (track/mot_metrics.h): id switches (a reference identity that moves from
//     one model track to another), IDF1 and MOTA. HOG misses people, and its identities
//     fragment and merge, so the id switches bound the tracker's from above and IDF1 and
//     MOTA its quality from below, rather than measure them.
#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <opencv2/videoio.hpp>
#include <set>

#include "vigil/cli/commands.h"
#include "vigil/cli/config_loader.h"
#include "vigil/cli/eval_support.h"
#include "vigil/core/log.h"
#include "vigil/infer/backend.h"
#include "vigil/pipeline/engine.h"
#include "vigil/track/linear_assignment.h"
#include "vigil/track/mot_metrics.h"

namespace vigil {

namespace {

struct ModelFrame {
  bool seen = false;
  std::vector<BBox> people;     // the frame's kept person detections
  std::vector<MotBox> tracks;   // the confirmed tracks matched in it
};

Result<ModelConfig> people_model(const EvalPeopleOptions& options) {
  if (options.config_path.empty()) {
    ModelConfig m = ModelConfig::of_kind("movenet");
    m.settings.model_path = options.model_path;
    m.settings.max_batch = 4;
    return m;
  }
  auto config = load_config_file(options.config_path, ConfigUse::models);
  if (!config.ok()) return config.error();
  for (const auto& [name, m] : config->models) {
    if (m.role() == ModelRole::object_detector) return m;
  }
  return Error{ErrorCode::invalid_argument, options.config_path + ": no people or object model (movenet, yolo_pose or yolo)"};
}

Result<std::vector<ModelFrame>> run_model(const EvalPeopleOptions& options, const ModelConfig& model) {
  EngineConfig config;
  config.models["people"] = model;
  CameraConfig camera;
  camera.id = "eval";
  camera.source.type = SourceType::file;
  camera.source.url = options.video;
  camera.source.live = false;
  camera.detect.model = "people";
  camera.track.enabled = true;
  if (const ModelKind* kind = find_model_kind(model.kind)) {  // as a config's camera would have them
    camera.track.tracker.high_score = kind->track_high_score;
    camera.track.tracker.new_track_score = kind->track_new_score;
  }
  config.cameras.push_back(camera);
  config.status_interval_s = 0;
  config.offline = true;
  std::mutex mutex;
  std::vector<ModelFrame> frames;
  EngineHooks hooks;
  hooks.on_result = [&](const FrameResult& r) {
    std::lock_guard lock(mutex);
    const auto seq = static_cast<std::size_t>(r.frame->seq);
    if (options.max_frames > 0 && seq >= static_cast<std::size_t>(options.max_frames)) return;
    if (frames.size() <= seq) frames.resize(seq + 1);
    ModelFrame& out = frames[seq];
    out.seen = true;
    for (const Detection& d : r.detections) {
      if (d.class_id == kPersonClass) out.people.push_back(d.bbox);
    }
    for (const TrackedObject& t : r.tracks) {
      if (t.detection >= 0 && static_cast<std::size_t>(t.detection) < r.detections.size() &&
          r.detections[static_cast<std::size_t>(t.detection)].class_id == kPersonClass) {
        out.tracks.push_back(MotBox{t.track_id, t.bbox, false});
      }
    }
  };
  auto engine = Engine::create(config, hooks);
  if (!engine.ok()) return engine.error();
  if (Status s = (*engine)->run(std::nullopt); !s.ok()) return s.error();
  return frames;
}

// HOG on every `every`-th frame; boxes shrunk as OpenCV's people detector sample does (its
// windows are larger than the person).
Result<std::map<std::size_t, std::vector<BBox>>> run_hog(const EvalPeopleOptions& options) {
  cv::VideoCapture capture(options.video, cv::CAP_FFMPEG);
  if (!capture.isOpened()) return Error{ErrorCode::not_found, options.video + ": OpenCV cannot open it"};
  cv::HOGDescriptor hog;
  hog.setSVMDetector(cv::HOGDescriptor::getDefaultPeopleDetector());
  std::map<std::size_t, std::vector<BBox>> out;
  cv::Mat bgr;
  std::vector<cv::Rect> found;
  std::vector<double> weights;
  for (std::size_t i = 0; capture.read(bgr); ++i) {
    if (options.max_frames > 0 && i >= static_cast<std::size_t>(options.max_frames)) break;
    if (i % static_cast<std::size_t>(options.hog_every) != 0) continue;
    hog.detectMultiScale(bgr, found, weights, 0, cv::Size(8, 8), cv::Size(), 1.05, 2.0, false);
    std::vector<BBox>& boxes = out[i];
    for (std::size_t k = 0; k < found.size(); ++k) {
      if (weights[k] < 0.5) continue;  // the weakest windows are mostly background
      const cv::Rect& r = found[k];
      const float x = static_cast<float>(r.x) + 0.1f * static_cast<float>(r.width);
      const float y = static_cast<float>(r.y) + 0.07f * static_cast<float>(r.height);
      boxes.push_back({x, y, x + 0.8f * static_cast<float>(r.width), y + 0.8f * static_cast<float>(r.height)});
    }
  }
  return out;
}

// Pairs of a and b overlapping by at least `min_iou`, the best total (exact assignment).
std::size_t matched(const std::vector<BBox>& a, const std::vector<BBox>& b, float min_iou, LinearAssignment& assignment) {
  if (a.empty() || b.empty()) return 0;
  std::vector<float> cost(a.size() * b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (std::size_t j = 0; j < b.size(); ++j) cost[i * b.size() + j] = 1.0f - iou(a[i], b[j]);
  }
  std::vector<int> row_to_col, col_to_row;
  assignment.solve(cost, static_cast<int>(a.size()), static_cast<int>(b.size()), 1.0f - min_iou, row_to_col, col_to_row);
  return static_cast<std::size_t>(std::count_if(row_to_col.begin(), row_to_col.end(), [](int c) { return c >= 0; }));
}

}  // namespace

int eval_people_command(const EvalPeopleOptions& options) {
  setup_logging("warn");
  auto model = people_model(options);
  if (!model.ok()) return eval_fail(model.error().message, 2);
  set_inference_threads(0);
  auto frames = run_model(options, *model);
  if (!frames.ok()) {
    const bool usage = frames.error().code == ErrorCode::invalid_argument || frames.error().code == ErrorCode::not_found;
    return eval_fail(frames.error().message, usage ? 2 : 1);
  }
  auto hog = run_hog(options);
  if (!hog.ok()) return eval_fail(hog.error().message, 2);

  LinearAssignment assignment;
  MotEvaluator identity(options.iou);
  std::uint64_t sampled = 0, both_people = 0, both_none = 0, model_frames = 0, hog_frames = 0;
  std::uint64_t hog_boxes = 0, model_boxes = 0, hog_matched = 0, model_matched = 0;
  // Reference identities: a HOG box continues the identity of the previous sampled frame's
  // box it overlaps most (IoU >= 0.3, each used once), else starts a new one.
  std::vector<MotBox> previous, current;
  std::uint64_t next_reference = 1;
  for (const auto& [index, boxes] : *hog) {
    if (index >= frames->size() || !(*frames)[index].seen) continue;
    const ModelFrame& f = (*frames)[index];
    ++sampled;
    const bool m = !f.people.empty(), h = !boxes.empty();
    model_frames += m;
    hog_frames += h;
    both_people += m && h;
    both_none += !m && !h;
    hog_boxes += boxes.size();
    model_boxes += f.people.size();
    const std::size_t pairs = matched(boxes, f.people, options.iou, assignment);
    hog_matched += pairs;
    model_matched += pairs;

    current.clear();
    std::vector<bool> used(previous.size(), false);
    for (const BBox& b : boxes) {
      int best = -1;
      float best_iou = 0.3f;
      for (std::size_t k = 0; k < previous.size(); ++k) {
        if (const float o = iou(previous[k].box, b); !used[k] && o >= best_iou) best_iou = o, best = static_cast<int>(k);
      }
      if (best >= 0) used[static_cast<std::size_t>(best)] = true;
      current.push_back(MotBox{best >= 0 ? previous[static_cast<std::size_t>(best)].id : next_reference++, b, false});
    }
    identity.add_frame(current, f.tracks);
    std::swap(previous, current);
  }

  std::map<std::uint64_t, std::uint64_t> track_frames;
  std::uint64_t frames_seen = 0;
  for (const ModelFrame& f : *frames) {
    frames_seen += f.seen;
    for (const MotBox& t : f.tracks) ++track_frames[t.id];
  }
  std::uint64_t tracked_boxes = 0;
  for (const auto& [id, n] : track_frames) tracked_boxes += n;
  const MotSummary s = identity.summary();
  const auto share = [](std::uint64_t part, std::uint64_t whole) { return whole ? static_cast<double>(part) / static_cast<double>(whole) : 0.0; };
  const nlohmann::json report = {
      {"eval", "people"},
      {"video", options.video},
      {"model", {{"kind", model->kind}, {"path", model->model_path()}}},
      {"frames", frames_seen},
      {"tracks", track_frames.size()},
      {"mean_track_frames", share(tracked_boxes, track_frames.size())},
      {"reference", {{"detector", "opencv-hog-default-people"}, {"every", options.hog_every}, {"frames", sampled}, {"iou", options.iou}}},
      {"frames_with_people", {{"model", model_frames}, {"hog", hog_frames}}},
      {"frame_agreement", share(both_people + both_none, sampled)},
      {"boxes", {{"model", model_boxes}, {"hog", hog_boxes}}},
      {"hog_boxes_matched", share(hog_matched, hog_boxes)},
      {"model_boxes_matched", share(model_matched, model_boxes)},
      {"identity",
       {{"reference_ids", s.gt_ids},
        {"id_switches", s.id_switches},
        {"idf1", s.idf1},
        {"mota", s.mota},
        {"matches", s.matches}}}};
  std::printf("%s\n", options.json ? report.dump().c_str() : report.dump(2).c_str());
  return 0;
}

}  // namespace vigil
