// vigil eval track: how well the live engine's detector + tracker keep identities, as the
// MOT benchmarks measure it (IDF1, MOTA, id switches; track/mot_metrics.h).
//
// Three kinds of input:
//   --scene crossings  a rendered scene with known trajectories: faces cut from the sample
//                      photos move over a textured background, pass each other, cross and
//                      hide one another for a moment. The video (H.264) and its ground truth
//                      (MOTChallenge text) are written first, then evaluated like a user's video.
//                      A face's box in the scene is the detector's box on the photo it came
//                      from, carried along its path: the scene measures tracking, not boxes.
//                      A face less than half visible is marked ignore (no detector sees it).
//   --video F --gt G   a user's video with MOTChallenge ground truth (frames from 1).
//   --video F          no ground truth: the video is taken to show one main face (e.g.
//                      Megamind.avi). Each frame's largest detection is the ground truth, and
//                      a cut (the picture changes at once) starts a new ground-truth id, so
//                      the id switches counted are the tracker's own within each shot.
// The engine runs the video as a file camera (every frame processed, none dropped) with
// `track.emit: every_frame` and `detect.every: N`, so frames between detections are scored
// on their predicted boxes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <unistd.h>

#include "vigil/cli/commands.h"
#include "vigil/cli/eval_support.h"
#include "vigil/core/log.h"
#include "vigil/infer/backend.h"
#include "vigil/pipeline/engine.h"
#include "vigil/source/image_file.h"
#include "vigil/source/video_writer.h"
#include "vigil/track/mot_metrics.h"
#include "vigil/vision/blazeface.h"

namespace vigil {

namespace {


// ---- The crossings scene ----------------------------------------------------------------

struct Sprite {
  cv::Mat bgr;   // square picture of a face with its surroundings
  BBox face;     // the face's box inside it
};

struct Path {
  cv::Point2d from, to;  // sprite centres at the first and last frame
  double bob = 0;        // vertical sway amplitude (pixels)
};

constexpr int kSceneWidth = 640;
constexpr int kSceneHeight = 360;

// A face per photo (the detector's surest), cut as a square around it.
Result<std::vector<Sprite>> make_sprites(const std::vector<std::string>& photos, BlazeFace& detector) {
  const int sizes[] = {108, 114, 104, 116};
  std::vector<Sprite> sprites;
  Detections found;
  std::vector<Detections> batch;
  for (const std::string& path : photos) {
    if (sprites.size() == std::size(sizes)) break;
    auto still = read_image_file(path);
    if (!still.ok()) return still.error();
    const Image* image = &still->image;
    if (Status s = detector.detect(std::span(&image, 1), batch); !s.ok()) return s.error();
    const Detection* best = nullptr;
    for (const Detection& d : batch[0]) {
      if (!best || d.score > best->score) best = &d;  // the clearest, most frontal face
    }
    if (!best) continue;
    cv::Mat photo = cv::imread(path, cv::IMREAD_COLOR);
    if (photo.empty()) return Error{ErrorCode::invalid_argument, path + ": cannot read"};
    const float face_side = std::max(best->bbox.width(), best->bbox.height());
    int side = static_cast<int>(std::lround(face_side * 1.7f));
    side = std::min({side, photo.cols, photo.rows});
    const float cx = 0.5f * (best->bbox.x1 + best->bbox.x2);
    const float cy = 0.5f * (best->bbox.y1 + best->bbox.y2);
    const int x0 = std::clamp(static_cast<int>(std::lround(cx - side / 2.0f)), 0, photo.cols - side);
    const int y0 = std::clamp(static_cast<int>(std::lround(cy - side / 2.0f)), 0, photo.rows - side);
    const int out = sizes[sprites.size()];
    Sprite sprite;
    cv::resize(photo(cv::Rect(x0, y0, side, side)), sprite.bgr, cv::Size(out, out), 0, 0, cv::INTER_AREA);
    const float k = static_cast<float>(out) / static_cast<float>(side);
    sprite.face = BBox{(best->bbox.x1 - x0) * k, (best->bbox.y1 - y0) * k, (best->bbox.x2 - x0) * k, (best->bbox.y2 - y0) * k};
    sprites.push_back(std::move(sprite));
  }
  if (sprites.size() < 2) return Error{ErrorCode::invalid_argument, "the scene needs faces from at least two photos"};
  return sprites;
}

cv::Mat make_background() {
  cv::Mat bg(kSceneHeight, kSceneWidth, CV_8UC3);
  for (int y = 0; y < bg.rows; ++y) {
    const double t = static_cast<double>(y) / bg.rows;
    bg.row(y).setTo(cv::Scalar(70 + 60 * t, 85 + 40 * t, 95 + 20 * t));
  }
  cv::RNG rng(20261124);
  for (int i = 0; i < 40; ++i) {
    const cv::Point centre(rng.uniform(0, kSceneWidth), rng.uniform(0, kSceneHeight));
    const cv::Size axes(rng.uniform(10, 90), rng.uniform(10, 60));
    cv::ellipse(bg, centre, axes, rng.uniform(0, 180), 0, 360,
                cv::Scalar(rng.uniform(40, 200), rng.uniform(40, 200), rng.uniform(40, 200)), cv::FILLED);
  }
  cv::GaussianBlur(bg, bg, cv::Size(0, 0), 6);
  return bg;
}

// Where each face goes (sprite centres over the scene's length): two lanes of faces walking
// in opposite directions. In each lane they pass each other and the one in front hides the
// other's face for about a second; the last one walks out of the picture at the end.
std::vector<Path> scene_paths() {
  return {
      {{40, 100}, {600, 100}, 6},    // top lane, left to right
      {{600, 145}, {40, 145}, 6},    // top lane, right to left, in front as they pass (t = 0.5)
      {{100, 255}, {620, 255}, 6},   // bottom lane, left to right
      {{500, 300}, {-20, 300}, 6},   // bottom lane, right to left, in front (t = 0.38), then out
  };
}

Status render_crossings(const std::vector<Sprite>& sprites, int frames, int fps, const std::string& video_path,
                        const std::string& gt_path) {
  auto writer = VideoWriter::open({video_path, kSceneWidth, kSceneHeight, fps, 18});
  if (!writer.ok()) return writer.error();
  const cv::Mat background = make_background();
  const std::vector<Path> paths = scene_paths();
  const std::size_t n = std::min(sprites.size(), paths.size());
  cv::Mat canvas, yuv;
  std::vector<cv::Rect> placed(n);  // on the canvas (clipped)
  std::vector<cv::Point> origin(n);  // sprite top-left (may be outside the canvas)
  const cv::Rect frame_rect(0, 0, kSceneWidth, kSceneHeight);
  std::ofstream gt(gt_path);
  gt << "# frame,id,left,top,width,height,consider,class,visibility (vigil eval track --scene crossings)\n";
  for (int f = 0; f < frames; ++f) {
    background.copyTo(canvas);
    const double t = frames > 1 ? static_cast<double>(f) / (frames - 1) : 0.0;
    for (std::size_t i = 0; i < n; ++i) {  // later sprites are drawn in front
      const Path& p = paths[i];
      const double cx = p.from.x + (p.to.x - p.from.x) * t;
      const double cy = p.from.y + (p.to.y - p.from.y) * t + p.bob * std::sin(2.0 * M_PI * 1.5 * t + static_cast<double>(i));
      const int side = sprites[i].bgr.cols;
      origin[i] = cv::Point(static_cast<int>(std::lround(cx - side / 2.0)), static_cast<int>(std::lround(cy - side / 2.0)));
      placed[i] = cv::Rect(origin[i], cv::Size(side, side)) & frame_rect;
      if (placed[i].area() > 0) sprites[i].bgr(placed[i] - origin[i]).copyTo(canvas(placed[i]));
    }
    for (std::size_t i = 0; i < n; ++i) {
      const BBox& face = sprites[i].face;
      const cv::Rect face_rect(origin[i].x + static_cast<int>(face.x1), origin[i].y + static_cast<int>(face.y1),
                               std::max(1, static_cast<int>(face.width())), std::max(1, static_cast<int>(face.height())));
      // Visible fraction: the face's pixels on the canvas and not under a sprite drawn after it.
      cv::Mat covered(face_rect.height, face_rect.width, CV_8U, cv::Scalar(1));
      if (const cv::Rect on_canvas = face_rect & frame_rect; on_canvas.area() > 0) covered(on_canvas - face_rect.tl()).setTo(0);
      for (std::size_t j = i + 1; j < n; ++j) {
        const cv::Rect overlap = (placed[j] & face_rect) - face_rect.tl();
        if (overlap.area() > 0) covered(overlap).setTo(1);
      }
      const float visible = 1.0f - static_cast<float>(cv::countNonZero(covered)) / static_cast<float>(face_rect.area());
      MotBox box;
      box.id = i + 1;
      const float ox = static_cast<float>(origin[i].x), oy = static_cast<float>(origin[i].y);
      box.box = BBox{ox + face.x1, oy + face.y1, ox + face.x2, oy + face.y2};
      box.ignore = visible < 0.5f;
      char line[160];
      std::snprintf(line, sizeof(line), "%d,%zu,%.2f,%.2f,%.2f,%.2f,%d,1,%.3f\n", f + 1, i + 1, box.box.x1, box.box.y1,
                    box.box.width(), box.box.height(), box.ignore ? 0 : 1, visible);
      gt << line;
    }
    cv::cvtColor(canvas, yuv, cv::COLOR_BGR2YUV_I420);
    Image image;
    image.format = PixelFormat::yuv420p;
    image.width = kSceneWidth;
    image.height = kSceneHeight;
    const int luma = kSceneWidth * kSceneHeight;
    image.planes[0] = {yuv.data, kSceneWidth};
    image.planes[1] = {yuv.data + luma, kSceneWidth / 2};
    image.planes[2] = {yuv.data + luma + luma / 4, kSceneWidth / 2};
    if (Status s = (*writer)->write(image); !s.ok()) return s;
  }
  if (!gt) return Error{ErrorCode::data_loss, gt_path + ": cannot write"};
  return (*writer)->close();
}

// ---- Running the engine and scoring -----------------------------------------------------

struct FrameOutput {
  bool seen = false;
  bool detected = false;
  std::vector<MotBox> tracks;
  BBox largest;      // the largest detection (main-face mode)
  bool has_largest = false;
  std::array<float, 64> thumb{};  // 8x8 mean luma, for cut detection
};

void thumbnail(const Image& image, std::array<float, 64>& out) {
  const Plane& y = image.planes[0];
  for (int by = 0; by < 8; ++by) {
    for (int bx = 0; bx < 8; ++bx) {
      double sum = 0;
      int count = 0;
      for (int yy = by * image.height / 8; yy < (by + 1) * image.height / 8; yy += 2) {
        for (int xx = bx * image.width / 8; xx < (bx + 1) * image.width / 8; xx += 2) {
          sum += y.data[static_cast<std::ptrdiff_t>(yy) * y.stride + xx];
          ++count;
        }
      }
      out[static_cast<std::size_t>(by * 8 + bx)] = count ? static_cast<float>(sum / count) : 0.0f;
    }
  }
}

Result<std::vector<FrameOutput>> run_engine(const EvalTrackOptions& options, const std::string& video) {
  EngineConfig config;
  ModelConfig model;
  model.settings.model_path = options.detector_path;
  model.settings.input_size = options.input_size;
  model.settings.max_batch = 1;
  model.settings.score_threshold = options.score_threshold;
  config.models["faces"] = model;
  CameraConfig camera;
  camera.id = "eval";
  camera.source.type = SourceType::file;
  camera.source.url = video;
  camera.source.live = false;
  camera.detect.model = "faces";
  camera.detect.every = options.detect_every;
  camera.track.enabled = true;
  camera.track.emit = TrackEmit::every_frame;
  config.cameras.push_back(camera);
  config.status_interval_s = 0;
  config.workers = 1;

  std::mutex mutex;
  std::vector<FrameOutput> frames;
  EngineHooks hooks;
  hooks.on_result = [&](const FrameResult& r) {
    std::lock_guard lock(mutex);
    const std::size_t seq = static_cast<std::size_t>(r.frame->seq);
    if (frames.size() <= seq) frames.resize(seq + 1);
    FrameOutput& out = frames[seq];
    out.seen = true;
    out.detected = r.detected;
    for (const TrackedObject& t : r.tracks) out.tracks.push_back(MotBox{t.track_id, t.bbox, false});
    for (const Detection& d : r.detections) {
      if (!out.has_largest || d.bbox.area() > out.largest.area()) out.largest = d.bbox, out.has_largest = true;
    }
    thumbnail(r.frame->image, out.thumb);
  };
  auto engine = Engine::create(config, hooks);
  if (!engine.ok()) return engine.error();
  if (Status s = (*engine)->run(std::nullopt); !s.ok()) return s.error();
  return frames;
}

}  // namespace

int eval_track_command(const EvalTrackOptions& options) {
  setup_logging("warn");
  std::filesystem::path out_dir = options.out_dir;
  bool temporary = false;
  if (out_dir.empty()) {
    out_dir = std::filesystem::temp_directory_path() / ("vigil-eval-track-" + std::to_string(::getpid()));
    temporary = true;
  }
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return eval_fail("cannot create " + out_dir.string() + ": " + ec.message());
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() {
      std::error_code ignored;
      if (!dir.empty()) std::filesystem::remove_all(dir, ignored);
    }
  } cleanup{temporary ? out_dir : std::filesystem::path{}};

  std::string video = options.video;
  std::string gt_path = options.gt_path;
  nlohmann::json report;
  if (!options.scene.empty()) {
    if (options.scene != "crossings") return eval_fail("unknown scene '" + options.scene + "' (known: crossings)", 2);
    auto detector = photo_face_detector(options.detector_path);
    if (!detector.ok()) return eval_fail(detector.error().message, 2);
    auto sprites = make_sprites(options.photos, **detector);
    if (!sprites.ok()) return eval_fail(sprites.error().message, 2);
    video = (out_dir / "crossings.mp4").string();
    gt_path = (out_dir / "crossings_gt.txt").string();
    // The ground truth is read back from the file, as a user's --gt would be.
    if (Status s = render_crossings(*sprites, options.frames, 25, video, gt_path); !s.ok()) {
      return eval_fail(s.error().message);
    }
    report["scene"] = options.scene;
    report["faces"] = sprites->size();
  } else {
    report["video"] = options.video;
  }

  MotSequence truth;
  if (!gt_path.empty()) {
    auto read = read_mot_file(gt_path);
    if (!read.ok()) return eval_fail(read.error().message, 2);
    truth = std::move(read).value();
  }
  set_inference_threads(0);
  auto run = run_engine(options, video);
  if (!run.ok()) {
    const bool usage = run.error().code == ErrorCode::invalid_argument || run.error().code == ErrorCode::not_found;
    return eval_fail(run.error().message, usage ? 2 : 1);
  }
  const std::vector<FrameOutput>& frames = *run;

  MotEvaluator eval(options.iou);
  std::int64_t last_frame = static_cast<std::int64_t>(frames.size());
  if (!truth.empty()) last_frame = std::max(last_frame, truth.rbegin()->first);
  int shots = 0;
  const std::array<float, 64>* previous = nullptr;
  std::vector<MotBox> gt;
  for (std::int64_t f = 1; f <= last_frame; ++f) {
    const std::size_t i = static_cast<std::size_t>(f - 1);
    const FrameOutput* out = i < frames.size() && frames[i].seen ? &frames[i] : nullptr;
    const std::vector<MotBox> none;
    const std::vector<MotBox>& hyp = out ? out->tracks : none;
    if (!gt_path.empty()) {
      const auto it = truth.find(f);
      eval.add_frame(it != truth.end() ? std::span<const MotBox>(it->second) : std::span<const MotBox>(), hyp);
      continue;
    }
    // Main-face mode: frames the detector ran on; a cut starts a new ground-truth id.
    if (!out) continue;
    float change = 0;
    if (previous) {
      for (std::size_t k = 0; k < 64; ++k) change += std::abs(out->thumb[k] - (*previous)[k]);
      change /= 64.0f;
    }
    if (!previous || change > options.cut_threshold) ++shots;
    previous = &out->thumb;
    if (!out->detected) continue;
    gt.clear();
    if (out->has_largest) gt.push_back(MotBox{static_cast<std::uint64_t>(shots), out->largest, false});
    // Only the track on the main face is scored: other faces are not in this ground truth.
    std::vector<MotBox> main_track;
    for (const MotBox& h : hyp) {
      if (!gt.empty() && iou(h.box, gt[0].box) >= options.iou) main_track.push_back(h);
    }
    eval.add_frame(gt, main_track);
  }
  if (!options.out_dir.empty()) {
    std::ofstream tracks(out_dir / "tracks.txt");
    for (std::size_t i = 0; i < frames.size(); ++i) {
      for (const MotBox& t : frames[i].tracks) {
        char line[160];
        std::snprintf(line, sizeof(line), "%zu,%llu,%.2f,%.2f,%.2f,%.2f,1,-1,-1,-1\n", i + 1,
                      static_cast<unsigned long long>(t.id), t.box.x1, t.box.y1, t.box.width(), t.box.height());
        tracks << line;
      }
    }
  }

  const MotSummary s = eval.summary();
  report["detect_every"] = options.detect_every;
  report["frames"] = s.frames;
  report["idf1"] = s.idf1;
  report["mota"] = s.mota;
  report["motp"] = s.motp;
  report["id_switches"] = s.id_switches;
  report["false_positives"] = s.false_positives;
  report["misses"] = s.misses;
  report["gt_boxes"] = s.gt;
  report["gt_ids"] = s.gt_ids;
  report["track_ids"] = s.hypothesis_ids;
  report["idp"] = s.idp;
  report["idr"] = s.idr;
  if (gt_path.empty()) report["shots"] = shots;
  if (options.json) {
    std::printf("%s\n", report.dump().c_str());
  } else {
    std::printf("vigil eval track: %s, detect every %d: %llu frames, IDF1 %.3f, MOTA %.3f, MOTP %.3f, id switches %llu, "
                "false positives %llu, misses %llu of %llu, ids %llu ground truth / %llu tracks\n",
                options.scene.empty() ? options.video.c_str() : options.scene.c_str(), options.detect_every,
                static_cast<unsigned long long>(s.frames), s.idf1, s.mota, s.motp,
                static_cast<unsigned long long>(s.id_switches), static_cast<unsigned long long>(s.false_positives),
                static_cast<unsigned long long>(s.misses), static_cast<unsigned long long>(s.gt),
                static_cast<unsigned long long>(s.gt_ids), static_cast<unsigned long long>(s.hypothesis_ids));
    if (!options.out_dir.empty()) std::printf("vigil eval track: video, ground truth and tracks in %s\n", out_dir.c_str());
  }
  return 0;
}

}  // namespace vigil
