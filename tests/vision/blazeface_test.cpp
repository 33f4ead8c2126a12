// BlazeFace on real photos, real video and a synthetic pan, with the real released model
// and its dynamic-batch rewrite.
#include "vigil/vision/blazeface.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "support/test_support.h"
#include "vigil/source/ffmpeg_source.h"
#include "vigil/source/synthetic_source.h"

namespace vigil {
namespace {

// The faces in face-api's sample photos as an independent detector finds them: face-api's
// SSD MobileNet v1, run in Node (tests/vision/fixtures/sample_faces_ssd.json, made by
// tools/make_sample_faces_fixture.sh; 22 faces: 3, 3, 3, 4, 5, 4). SSD draws taller boxes
// than BlazeFace (forehead to chin and more), so a match needs IoU >= 0.4, not 0.5.
constexpr float kMatchIou = 0.4f;

const std::vector<std::vector<BBox>>& sample_faces() {
  static const std::vector<std::vector<BBox>> faces = [] {
    std::vector<std::vector<BBox>> out;
    std::ifstream in(std::string(VIGIL_SOURCE_DIR) + "/tests/vision/fixtures/sample_faces_ssd.json");
    EXPECT_TRUE(in) << "missing fixture sample_faces_ssd.json";
    if (!in) return out;
    const auto j = nlohmann::json::parse(in);
    for (int i = 1; i <= 6; ++i) {
      out.emplace_back();
      for (const auto& face : j["images"]["sample" + std::to_string(i) + ".jpg"]) {
        const auto& b = face["box"];
        out.back().push_back(BBox{b[0].get<float>(), b[1].get<float>(), b[2].get<float>(), b[3].get<float>()});
      }
    }
    return out;
  }();
  return faces;
}

struct Photo {
  cv::Mat bgr;
  Image image;
};

Photo load_photo(int index) {
  Photo p;
  p.bgr = cv::imread(test::data_file("media/sample" + std::to_string(index) + ".jpg"), cv::IMREAD_COLOR);
  EXPECT_FALSE(p.bgr.empty());
  p.image.format = PixelFormat::bgr24;
  p.image.width = p.bgr.cols;
  p.image.height = p.bgr.rows;
  p.image.planes[0] = {p.bgr.data, static_cast<int>(p.bgr.step)};
  return p;
}

std::unique_ptr<BlazeFace> make_detector(const std::string& model, int input_size, int max_batch,
                                         BackendKind backend = BackendKind::automatic,
                                         Precision precision = Precision::fp32) {
  BlazeFaceConfig config;
  config.model_path = test::data_file("models/" + model);
  config.input_size = input_size;
  config.max_batch = max_batch;
  config.backend = backend;
  config.precision = precision;
  auto detector = BlazeFace::create(config);
  EXPECT_TRUE(detector.ok()) << detector.error().message;
  return detector.ok() ? std::move(detector).value() : nullptr;
}

struct Score {
  int truth = 0, found = 0, matched_truth = 0, matched_found = 0;
  double recall() const { return truth ? static_cast<double>(matched_truth) / truth : 0; }
  double precision() const { return found ? static_cast<double>(matched_found) / found : 0; }
};

void add_score(Score& s, const std::vector<BBox>& truth, const Detections& found) {
  s.truth += static_cast<int>(truth.size());
  s.found += static_cast<int>(found.size());
  for (const BBox& t : truth) {
    for (const Detection& d : found) {
      if (iou(t, d.bbox) >= kMatchIou) {
        ++s.matched_truth;
        break;
      }
    }
  }
  for (const Detection& d : found) {
    for (const BBox& t : truth) {
      if (iou(t, d.bbox) >= kMatchIou) {
        ++s.matched_found;
        break;
      }
    }
  }
}

class SamplePhotosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 1; i <= 6; ++i) photos_.push_back(load_photo(i));
  }
  std::vector<Photo> photos_;
};

TEST_F(SamplePhotosTest, RecallAndPrecisionAtBatchOneAndEightAreEqualAndHigh) {
  auto single = make_detector("blazeface_back_256_dyn.onnx", 256, 1);
  auto batched = make_detector("blazeface_back_256_dyn.onnx", 256, 8);
  ASSERT_TRUE(single && batched);
  // Eight images: the six photos and the first two again, so the batch is a full 8.
  std::vector<const Image*> images;
  for (int i = 0; i < 8; ++i) images.push_back(&photos_[i % 6].image);
  std::vector<Detections> one_by_one, together;
  ASSERT_TRUE(single->detect(images, one_by_one).ok());
  ASSERT_TRUE(batched->detect(images, together).ok());
  EXPECT_EQ(single->calls(), 8u);
  EXPECT_EQ(batched->calls(), 1u);

  Score score;
  ASSERT_EQ(sample_faces().size(), 6u);
  for (int i = 0; i < 6; ++i) add_score(score, sample_faces()[i], one_by_one[i]);
  std::printf("BlazeFace 256 on the sample photos against SSD MobileNet v1 (IoU >= %.1f): recall %d/%d = %.3f, "
              "precision %d/%d = %.3f\n",
              kMatchIou, score.matched_truth, score.truth, score.recall(), score.matched_found, score.found,
              score.precision());
  EXPECT_GE(score.recall(), 0.9) << score.matched_truth << " of " << score.truth;
  EXPECT_GE(score.precision(), 0.9) << score.matched_found << " of " << score.found;

  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(one_by_one[i].size(), together[i].size()) << "image " << i;
    for (std::size_t k = 0; k < together[i].size(); ++k) {
      EXPECT_NEAR(one_by_one[i][k].bbox.x1, together[i][k].bbox.x1, 0.05);
      EXPECT_NEAR(one_by_one[i][k].bbox.y2, together[i][k].bbox.y2, 0.05);
      EXPECT_NEAR(one_by_one[i][k].score, together[i][k].score, 1e-4);
    }
  }
}

// The default backend (XNNPACK) finds what OpenCV DNN's fp32 path finds on real photos:
// the same faces, boxes and keypoints within 1 px, scores within 0.02, for both models.
// Each fast fp32 backend finds the faces OpenCV DNN (the reference) finds: boxes and
// keypoints within 1 px, scores within 0.02. (bf16 does not hold these bounds: see
// OnednnBf16StaysCloseToFp32.)
TEST_F(SamplePhotosTest, FastBackendsFindWhatOpenCvFinds) {
  struct Case {
    std::string model;
    int size;
    BackendKind kind;
    Precision precision;
  };
  std::vector<Case> cases;
  for (const auto& [model, size] : {std::pair<std::string, int>{"blazeface_front_128_dyn.onnx", 128},
                                    {"blazeface_back_256_dyn.onnx", 256}}) {
    cases.push_back({model, size, BackendKind::xnnpack, Precision::fp32});
    cases.push_back({model, size, BackendKind::onednn, Precision::fp32});
  }
  for (const auto& [model, size, kind, precision] : cases) {
    auto reference = make_detector(model, size, 8, BackendKind::opencv);
    auto fast = make_detector(model, size, 8, kind, precision);
    ASSERT_TRUE(reference && fast);
    std::vector<const Image*> images;
    for (const Photo& p : photos_) images.push_back(&p.image);
    std::vector<Detections> want, got;
    ASSERT_TRUE(reference->detect(images, want).ok());
    ASSERT_TRUE(fast->detect(images, got).ok());
    int faces = 0;
    float worst_box = 0, worst_score = 0;
    for (std::size_t i = 0; i < images.size(); ++i) {
      ASSERT_EQ(want[i].size(), got[i].size()) << model << " photo " << i + 1;
      for (std::size_t k = 0; k < want[i].size(); ++k, ++faces) {
        const Detection& a = want[i][k];
        const Detection& b = got[i][k];
        EXPECT_NEAR(a.score, b.score, 0.02) << model << " photo " << i + 1;
        worst_score = std::max(worst_score, std::abs(a.score - b.score));
        for (const auto& [x, y] : {std::pair{a.bbox.x1, b.bbox.x1}, {a.bbox.y1, b.bbox.y1}, {a.bbox.x2, b.bbox.x2},
                                   {a.bbox.y2, b.bbox.y2}}) {
          EXPECT_NEAR(x, y, 1.0) << model << " photo " << i + 1;
          worst_box = std::max(worst_box, std::abs(x - y));
        }
        for (int p = 0; p < a.keypoint_count; ++p) {
          EXPECT_NEAR(a.keypoints[p].x, b.keypoints[p].x, 1.0) << model << " photo " << i + 1;
          EXPECT_NEAR(a.keypoints[p].y, b.keypoints[p].y, 1.0) << model << " photo " << i + 1;
        }
      }
    }
    EXPECT_GE(faces, 10) << model;  // the photos have 22 faces; each model finds most
    std::printf("%s: %d faces, %s %s against OpenCV DNN: largest box difference %.4f px, score %.5f\n", model.c_str(),
                faces, std::string(to_string(kind)).c_str(), std::string(to_string(precision)).c_str(), worst_box, worst_score);
  }
}

TEST_F(SamplePhotosTest, KeypointsLieInsideTheirFace) {
  auto detector = make_detector("blazeface_back_256_dyn.onnx", 256, 8);
  ASSERT_TRUE(detector);
  std::vector<const Image*> images{&photos_[0].image};
  std::vector<Detections> out;
  ASSERT_TRUE(detector->detect(images, out).ok());
  ASSERT_FALSE(out[0].empty());
  for (const Detection& d : out[0]) {
    ASSERT_EQ(d.keypoint_count, 6);
    for (int k = 0; k < 4; ++k) {  // eyes, nose, mouth (ears may sit on the box edge)
      EXPECT_GT(d.keypoints[k].x, d.bbox.x1);
      EXPECT_LT(d.keypoints[k].x, d.bbox.x2);
      EXPECT_GT(d.keypoints[k].y, d.bbox.y1);
      EXPECT_LT(d.keypoints[k].y, d.bbox.y2);
    }
    EXPECT_LT(d.keypoints[1].x - d.keypoints[0].x, d.bbox.width());  // eyes side by side
    EXPECT_LT(d.keypoints[0].y, d.keypoints[3].y);                   // eye above mouth
  }
}

// The rewritten graph computes what the released one does at batch 1, for both models,
// and a batch of 8 gives each item what batch 1 gives it.
TEST(BlazeFaceModelTest, DynamicBatchRewriteMatchesOriginal) {
  for (const auto& [name, size] : {std::pair<std::string, int>{"front_128", 128}, {"back_256", 256}}) {
    auto original = create_opencv_backend({test::data_file("models/blazeface_" + name + ".onnx"), blazeface_output_names()});
    auto rewritten =
        create_opencv_backend({test::data_file("models/blazeface_" + name + "_dyn.onnx"), blazeface_output_names()});
    ASSERT_TRUE(original.ok() && rewritten.ok());
    Tensor batch({8, size, size, 3});
    for (std::size_t i = 0; i < batch.size(); ++i) batch.data()[i] = static_cast<float>((i * 7919) % 255) / 127.5f - 1;
    Tensor first({1, size, size, 3});
    std::copy_n(batch.data(), first.size(), first.data());
    std::vector<Tensor> a, b, c;
    ASSERT_TRUE((*original)->infer(first, a).ok());
    ASSERT_TRUE((*rewritten)->infer(first, b).ok());
    ASSERT_TRUE((*rewritten)->infer(batch, c).ok());
    ASSERT_EQ(a.size(), 4u);
    ASSERT_EQ(b.size(), 4u);
    ASSERT_EQ(c.size(), 4u);
    for (int o = 0; o < 4; ++o) {
      ASSERT_EQ(a[o].size(), b[o].size());
      ASSERT_EQ(c[o].dim(0), 8);
      float worst_b = 0, worst_c = 0;
      for (std::size_t i = 0; i < a[o].size(); ++i) {
        worst_b = std::max(worst_b, std::abs(a[o].data()[i] - b[o].data()[i]));
        worst_c = std::max(worst_c, std::abs(a[o].data()[i] - c[o].data()[i]));
      }
      EXPECT_LT(worst_b, 1e-4) << name << " output " << o;
      EXPECT_LT(worst_c, 1e-3) << name << " output " << o << " (batch 8, item 0)";
    }
  }
}

TEST(BlazeFaceModelTest, ReleasedBatchOneModelRefusesABatchWithAClearError) {
  BlazeFaceConfig config;
  config.model_path = test::data_file("models/blazeface_back_256.onnx");
  config.max_batch = 8;
  auto detector = BlazeFace::create(config);
  ASSERT_FALSE(detector.ok());
  EXPECT_EQ(detector.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(detector.error().message.find("dynamic batch"), std::string::npos) << detector.error().message;
  config.max_batch = 1;
  EXPECT_TRUE(BlazeFace::create(config).ok());
}

TEST(BlazeFaceModelTest, WrongModelFilesGiveClearErrors) {
  test::TempDir dir;
  std::ofstream(dir.file("garbage.onnx")) << "this is not a model";
  BlazeFaceConfig config;
  config.model_path = dir.file("garbage.onnx");
  auto garbage = BlazeFace::create(config);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(garbage.error().message.find('\n'), std::string::npos);

  config.model_path = dir.file("missing.onnx");
  auto missing = BlazeFace::create(config);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);

  config.model_path = test::data_file("models/blazeface_front_128_dyn.onnx");
  config.input_size = 256;  // the 128 model asked to take 256x256 input
  auto wrong_size = BlazeFace::create(config);
  ASSERT_FALSE(wrong_size.ok());
  EXPECT_NE(wrong_size.error().message.find("not a BlazeFace 256x256"), std::string::npos) << wrong_size.error().message;
}

// Megamind.avi: a face in nearly every frame (MPEG-4 part 2 / XVID).
TEST(BlazeFaceVideoTest, FindsAFaceInMostMegamindFrames) {
  SourceConfig config;
  config.url = test::data_file("media/Megamind.avi");
  auto source = FfmpegSource::open(config, "megamind");
  ASSERT_TRUE(source.ok()) << source.error().message;
  auto detector = make_detector("blazeface_front_128_dyn.onnx", 128, 8);
  ASSERT_TRUE(detector);
  int frames = 0, with_face = 0;
  std::vector<FrameRef> batch;
  std::vector<const Image*> images;
  std::vector<Detections> out;
  auto flush = [&] {
    images.clear();
    for (auto& f : batch) images.push_back(&f->image);
    ASSERT_TRUE(detector->detect(images, out).ok());
    for (std::size_t i = 0; i < batch.size(); ++i) with_face += out[i].empty() ? 0 : 1;
    batch.clear();
  };
  for (;;) {
    auto frame = (*source)->read();
    ASSERT_TRUE(frame.ok()) << frame.error().message;
    if (!*frame) break;
    ++frames;
    batch.push_back(std::move(frame).value());
    if (batch.size() == 8) flush();
  }
  flush();
  EXPECT_EQ(frames, 270);
  EXPECT_GE(with_face, 243) << with_face << " of " << frames;  // 90%
}

// A synthetic camera panning and zooming over sample1: faces in nearly every frame, at the
// positions the pan's own geometry predicts.
TEST(BlazeFaceVideoTest, PanCameraFacesFollowThePan) {
  SourceConfig config;
  config.type = SourceType::synthetic;
  config.pattern = SyntheticPattern::image;
  config.path = test::data_file("media/sample1.jpg");
  config.width = 1280;
  config.height = 720;
  config.fps = 15;
  config.live = false;
  config.zoom_min = 1.15;
  config.zoom_max = 1.3;
  config.pan_period_s = 8;  // 120 frames: one sweep across and back, one zoom swing
  auto source = SyntheticSource::open(config, "pan");
  ASSERT_TRUE(source.ok()) << source.error().message;
  const PanGeometry& pan = *(*source)->pan();
  auto detector = make_detector("blazeface_back_256_dyn.onnx", 256, 8);
  ASSERT_TRUE(detector);

  const int kFrames = 120;
  int frames_with_face = 0, expected = 0, matched = 0;
  double centre_error_sum = 0;
  for (int n = 0; n < kFrames; n += 8) {
    std::vector<FrameRef> frames;
    std::vector<const Image*> images;
    for (int k = 0; k < 8 && n + k < kFrames; ++k) {
      auto frame = (*source)->read();
      ASSERT_TRUE(frame.ok() && *frame);
      frames.push_back(std::move(frame).value());
      images.push_back(&frames.back()->image);
    }
    std::vector<Detections> out;
    ASSERT_TRUE(detector->detect(images, out).ok());
    for (std::size_t k = 0; k < frames.size(); ++k) {
      const PixelRect w = pan.window_at(frames[k]->seq);
      const float sx = 1280.0f / static_cast<float>(w.width);
      const float sy = 720.0f / static_cast<float>(w.height);
      if (!out[k].empty()) ++frames_with_face;
      for (const BBox& face : sample_faces()[0]) {
        const BBox in_frame{(face.x1 - w.x) * sx, (face.y1 - w.y) * sy, (face.x2 - w.x) * sx, (face.y2 - w.y) * sy};
        if (in_frame.x1 < 0 || in_frame.y1 < 0 || in_frame.x2 > 1280 || in_frame.y2 > 720) continue;  // cut off
        ++expected;
        for (const Detection& d : out[k]) {
          if (iou(in_frame, d.bbox) >= kMatchIou) {
            ++matched;
            // Horizontal centres agree; vertically SSD's box reaches higher (forehead).
            centre_error_sum += std::abs(d.bbox.x1 + d.bbox.x2 - in_frame.x1 - in_frame.x2) / 2 / sx;
            break;
          }
        }
      }
    }
  }
  EXPECT_GE(frames_with_face, kFrames * 95 / 100) << frames_with_face << " of " << kFrames;
  ASSERT_GT(expected, kFrames);  // at least one whole face per frame on average
  EXPECT_GE(matched, expected * 95 / 100) << matched << " of " << expected << " predicted faces found";
  EXPECT_LT(centre_error_sum / std::max(matched, 1), 15.0) << "mean horizontal centre error in photo pixels";
}

}  // namespace
}  // namespace vigil
