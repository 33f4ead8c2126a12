// A model kind added the way README's "Adding a model" shows: one ModelKind registered in the
// table, then named by a config, runs live (the engine, through the config loader) and in a
// harvest, with no other change. The kind is a fake face detector (one face in the middle of
// every frame, with its keypoints) so what is checked is the wiring, not a model.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_support.h"
#include "vigil/cli/config_loader.h"
#include "vigil/harvest/harvester.h"
#include "vigil/pipeline/engine.h"
#include "vigil/pipeline/model_kinds.h"

namespace vigil {
namespace {

// Finds one face in the middle of each image: a box `size` of the image's height, with
// BlazeFace's keypoints where a face has them.
class MiddleFaceDetector final : public Detector {
 public:
  MiddleFaceDetector(float size, int max_batch) : size_(size), max_batch_(max_batch) {}
  Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override {
    results.assign(images.size(), {});
    for (std::size_t i = 0; i < images.size(); ++i) {
      const float s = size_ * static_cast<float>(images[i]->height);
      const float x = 0.5f * static_cast<float>(images[i]->width) - s / 2, y = 0.5f * static_cast<float>(images[i]->height) - s / 2;
      Detection d;
      d.bbox = {x, y, x + s, y + s};
      d.score = 0.9f;
      d.keypoint_count = 6;
      d.keypoints = {Point2{x + 0.3f * s, y + 0.35f * s}, Point2{x + 0.7f * s, y + 0.35f * s}, Point2{x + 0.5f * s, y + 0.55f * s},
                     Point2{x + 0.5f * s, y + 0.75f * s}, Point2{x + 0.05f * s, y + 0.4f * s}, Point2{x + 0.95f * s, y + 0.4f * s}};
      results[i].push_back(d);
    }
    return {};
  }
  int max_batch() const override { return max_batch_; }

 private:
  float size_;
  int max_batch_;
};

// The whole change a new kind takes: its entry in the table. (Its `path` is hashed into a
// harvest's journal like any model's; this one reads no file.)
Status register_middle_face() {
  ModelKind kind;
  kind.name = "middle_face";
  kind.role = ModelRole::face_detector;  // faces with keypoints: embedded live, and harvested
  kind.defaults.max_batch = 4;
  kind.defaults.score_threshold = 0.4f;  // here: the face's size, as a share of the height
  kind.settings = {"score_threshold"};
  kind.check = [](const ModelSettings& s) -> std::pair<std::string, std::string> {
    if (s.score_threshold > 0.9f) return {"score_threshold", "a face that size does not fit"};
    return {};
  };
  kind.make_detector = [](const ModelSettings& s) -> Result<std::unique_ptr<Detector>> {
    return std::unique_ptr<Detector>(new MiddleFaceDetector(s.score_threshold, s.max_batch));
  };
  return register_model_kind(std::move(kind));
}

class ModelKindTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const Status registered = register_middle_face();
    ASSERT_TRUE(registered.ok()) << registered.error().message;
  }
};

std::string config_text(const std::string& clip, const std::string& out) {
  return "models:\n"
         "  faces: {kind: middle_face, path: " + test::data_file("models/blazeface_back_256_dyn.onnx") + ", score_threshold: 0.5}\n"
         "  embedder: {kind: face_embedder, path: " + test::data_file("models/face_recognition_128.onnx") + ", max_batch: 8}\n"
         "cameras:\n"
         "  - id: clip\n"
         "    source: {type: file, url: " + clip + ", live: false}\n"
         "    detect: {model: faces}\n"
         "sinks:\n"
         "  - {type: jsonl, path: " + out + "}\n"
         "threads: {inference: 1}\n";
}

TEST_F(ModelKindTest, ARegisteredKindIsInTheTableOnceAndItsSettingsAreChecked) {
  const ModelKind* kind = find_model_kind("middle_face");
  ASSERT_NE(kind, nullptr);
  EXPECT_EQ(kind->role, ModelRole::face_detector);
  const Status again = register_middle_face();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::already_exists);
  ModelKind nameless;
  nameless.make_detector = kind->make_detector;
  EXPECT_EQ(register_model_kind(nameless).error().code, ErrorCode::invalid_argument);
  ModelKind no_maker;
  no_maker.name = "no_maker";
  no_maker.role = ModelRole::face_embedder;
  EXPECT_EQ(register_model_kind(no_maker).error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(find_model_kind("no_maker"), nullptr);

  auto too_big = parse_config(config_text("a.mp4", "out.jsonl").replace(config_text("a.mp4", "out.jsonl").find("0.5"), 3, "0.95"));
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.error().message.find("models.faces.score_threshold: a face that size does not fit"), std::string::npos)
      << too_big.error().message;
  std::string with_nms = config_text("a.mp4", "out.jsonl");
  with_nms.replace(with_nms.find("score_threshold: 0.5"), 20, "nms: hard");
  auto refused = parse_config(with_nms);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("not a setting of a middle_face (kinds with it: blazeface)"), std::string::npos)
      << refused.error().message;
  std::string unknown = config_text("a.mp4", "out.jsonl");
  unknown.replace(unknown.find("middle_face"), 11, "side_face");
  auto unknown_kind = parse_config(unknown);
  ASSERT_FALSE(unknown_kind.ok());
  EXPECT_NE(unknown_kind.error().message.find("middle_face"), std::string::npos) << "the kinds there are, listed";
}

TEST_F(ModelKindTest, ANewKindRunsLiveAndInAHarvest) {
  test::TempDir dir;
  const std::string clip = dir.file("clip.mkv");
  ASSERT_TRUE(test::cut_megamind(clip, 12, 3));
  // Live: the config names the kind; the engine makes its instances through the table.
  auto config = parse_config(config_text(clip, dir.file("results.jsonl")));
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_TRUE(config->models.at("faces").finds_faces());
  EXPECT_EQ(config->cameras[0].faces_model, "embedder") << "a face detector's faces are embedded";
  std::atomic<std::size_t> detections{0}, faces{0};
  EngineHooks hooks;
  hooks.on_result = [&](const FrameResult& r) {
    detections += r.detections.size();
    faces += r.faces.size();
  };
  {
    auto engine = Engine::create(*config, hooks);
    ASSERT_TRUE(engine.ok()) << engine.error().message;
    ASSERT_TRUE((*engine)->run(120.0).ok());
  }
  EXPECT_EQ(detections.load(), 12u) << "one face in each of 12 frames";
  EXPECT_GE(faces.load(), 1u) << "the track's face embedded";
  const std::string jsonl = test::read_file(dir.file("results.jsonl"));
  EXPECT_NE(jsonl.find("\"detections\""), std::string::npos);

  // Harvest: the same config's models.
  HarvestOptions o;
  o.inputs = {clip};
  o.out_dir = dir.file("harvest");
  o.detector = config->models.at("faces");
  o.embedder = config->models.at("embedder");
  o.cpu_budget = 1;
  auto summary = harvest(o);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->faces_detected, 12u);
  EXPECT_LT(summary->shot_cuts, 3u);
  EXPECT_EQ(summary->tracks, summary->shot_cuts + 1) << "the face stays where it is: one track a shot";
  EXPECT_GE(summary->faces_embedded, 1u);
  const auto manifest = nlohmann::json::parse(test::read_file(dir.file("harvest/manifest.json")));
  EXPECT_EQ(manifest["models"]["detector"]["kind"], "middle_face");
}

}  // namespace
}  // namespace vigil
