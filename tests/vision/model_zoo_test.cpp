// The decoders for the models users bring (Ultralytics YOLO detection and pose, InsightFace
// SCRFD), on fixture models with the exact signatures of the real exports and planted outputs
// (tools/make_fixture_models.py lists them); every expected value below is computed by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "support/test_support.h"
#include "vigil/core/frame.h"
#include "vigil/vision/blazeface.h"
#include "vigil/vision/face_embedder.h"
#include "vigil/vision/scrfd.h"
#include "vigil/vision/yolo.h"

namespace vigil {
namespace {

// A grey 1280x720 frame: into 640x640 it is scaled by 0.5 with 140 rows of bars above and
// below, so a model point (x, y) is the frame point (2x, 2y - 280).
Image grey_frame(ByteStorage& storage) {
  Image image = storage.allocate(PixelFormat::yuv420p, 1280, 720);
  for (int p = 0; p < 3; ++p) {
    for (int y = 0; y < image.plane_height(p); ++y) {
      std::fill_n(const_cast<std::uint8_t*>(image.planes[p].data) + y * image.planes[p].stride, image.plane_width(p),
                  std::uint8_t{128});
    }
  }
  return image;
}

std::string fixture(const std::string& name) { return test::data_file("models/fixtures/" + name); }

// Boxes are clipped to the 1280x720 frame.
void expect_box(const Detection& d, float x1, float y1, float x2, float y2) {
  x1 = std::clamp(x1, 0.0f, 1280.0f);
  x2 = std::clamp(x2, 0.0f, 1280.0f);
  y1 = std::clamp(y1, 0.0f, 720.0f);
  y2 = std::clamp(y2, 0.0f, 720.0f);
  EXPECT_NEAR(d.bbox.x1, x1, 1e-3f);
  EXPECT_NEAR(d.bbox.y1, y1, 1e-3f);
  EXPECT_NEAR(d.bbox.x2, x2, 1e-3f);
  EXPECT_NEAR(d.bbox.y2, y2, 1e-3f);
}

TEST(YoloTest, DecodesBoxesAndClassesWithNmsPerClass) {
  {
    YoloConfig config;
    config.model_path = fixture("yolo11n.onnx");
    config.max_batch = 2;
    auto yolo = Yolo::create(config);
    ASSERT_TRUE(yolo.ok()) << yolo.error().message;
    EXPECT_EQ((*yolo)->input_size(), 640);
    EXPECT_EQ((*yolo)->classes(), 80);
    ByteStorage storage;
    const Image frame = grey_frame(storage);
    const Image* frames[] = {&frame, &frame, &frame};  // batches of 2 and 1
    std::vector<Detections> results;
    ASSERT_TRUE((*yolo)->detect(frames, results).ok());
    ASSERT_EQ(results.size(), 3u);
    for (const Detections& found : results) {
      // person 0.90, truck 0.55 and car 0.60 on the same box (kept: other class), the car's
      // duplicate suppressed, the 0.20 anchor under the threshold.
      ASSERT_EQ(found.size(), 3u);
      EXPECT_EQ(found[0].class_id, 0);
      EXPECT_FLOAT_EQ(found[0].score, 0.90f);
      expect_box(found[0], 2 * 270, 2 * 140 - 280, 2 * 370, 2 * 340 - 280);  // (320, 240) 100x200
      EXPECT_EQ(found[1].class_id, 2);
      EXPECT_FLOAT_EQ(found[1].score, 0.60f);
      expect_box(found[1], 2 * 75, 2 * 475 - 280, 2 * 125, 2 * 525 - 280);   // (100, 500) 50x50
      EXPECT_EQ(found[2].class_id, 7);
      expect_box(found[2], 2 * 75, 2 * 475 - 280, 2 * 125, 2 * 525 - 280);
      EXPECT_EQ(found[0].keypoint_count, 0);
    }
  }
}

TEST(YoloTest, DecodesPoseKeypointsWithVisibility) {
  YoloConfig config;
  config.model_path = fixture("yolov8n-pose.onnx");
  config.pose = true;
  auto yolo = Yolo::create(config);
  ASSERT_TRUE(yolo.ok()) << yolo.error().message;
  EXPECT_EQ((*yolo)->keypoints(), 17);
  ByteStorage storage;
  const Image frame = grey_frame(storage);
  const Image* frames[] = {&frame};
  std::vector<Detections> results;
  ASSERT_TRUE((*yolo)->detect(frames, results).ok());
  ASSERT_EQ(results[0].size(), 1u);  // the duplicate suppressed, the 0.10 one under the threshold
  const Detection& person = results[0][0];
  EXPECT_FLOAT_EQ(person.score, 0.80f);
  EXPECT_EQ(person.class_id, 0);
  expect_box(person, 2 * 220, 2 * 120 - 280, 2 * 420, 2 * 520 - 280);  // (320, 320) 200x400
  ASSERT_EQ(person.keypoint_count, 17);
  for (int k = 0; k < 17; ++k) {
    EXPECT_NEAR(person.keypoints[k].x, 2.0f * (250 + 8 * k), 1e-3f) << k;
    EXPECT_NEAR(person.keypoints[k].y, 2.0f * (150 + 16 * k) - 280, 1e-3f) << k;
    EXPECT_FLOAT_EQ(person.keypoint_scores[k], k % 2 == 0 ? 0.9f : 0.1f) << k;
  }
}

TEST(ScrfdTest, DecodesFacesAndKeypointsWithAndWithoutABatchAxis) {
  for (const char* file : {"det_10g.onnx", "det_10g_batched.onnx"}) {
    ScrfdConfig config;
    config.model_path = fixture(file);
    const bool batched = std::string(file) == "det_10g_batched.onnx";
    config.max_batch = batched ? 4 : 1;
    auto scrfd = Scrfd::create(config);
    ASSERT_TRUE(scrfd.ok()) << scrfd.error().message;
    EXPECT_EQ((*scrfd)->batch_axis(), batched) << file;
    EXPECT_TRUE((*scrfd)->has_keypoints());
    ByteStorage storage;
    const Image frame = grey_frame(storage);
    const Image* frames[] = {&frame, &frame};
    std::vector<Detections> results;
    ASSERT_TRUE((*scrfd)->detect(frames, results).ok()) << file;
    for (const Detections& found : results) {
      ASSERT_EQ(found.size(), 2u) << file;  // the 0.30 face is under the threshold
      const Detection& big = found[0];
      EXPECT_FLOAT_EQ(big.score, 0.95f);
      expect_box(big, 2 * 272, 2 * 96 - 280, 2 * 400, 2 * 256 - 280);
      ASSERT_EQ(big.keypoint_count, 6);
      const float want[6][2] = {{296, 144}, {344, 144}, {320, 168}, {320, 192}, {304, 192}, {336, 192}};
      for (int k = 0; k < 6; ++k) {
        EXPECT_NEAR(big.keypoints[k].x, 2 * want[k][0], 1e-3f) << k;
        EXPECT_NEAR(big.keypoints[k].y, 2 * want[k][1] - 280, 1e-3f) << k;
      }
      const Detection& small = found[1];
      EXPECT_FLOAT_EQ(small.score, 0.70f);
      expect_box(small, 2 * 128, 2 * 448 - 280, 2 * 192, 2 * 512 - 280);
      EXPECT_NEAR(small.keypoints[3].x, 2 * 160.0f, 1e-3f);  // mouth centre (160, 496)
      EXPECT_NEAR(small.keypoints[3].y, 2 * 496.0f - 280, 1e-3f);
    }
  }
}

// The ArcFace fixture: the mean of each normalised input channel through W[k] = (sin k,
// cos k, sin 2k / 2), b[k] = (k mod 7) / 100; vigil L2-normalises the result.
Embedding arcface_fixture_embedding(float r, float g, float b) {
  const float x[3] = {(r - 127.5f) / 127.5f, (g - 127.5f) / 127.5f, (b - 127.5f) / 127.5f};
  Embedding e(512);
  for (std::size_t k = 0; k < 512; ++k) {
    const double kk = static_cast<double>(k);
    e[k] = static_cast<float>(std::sin(kk) * x[0] + std::cos(kk) * x[1] + 0.5 * std::sin(2 * kk) * x[2] +
                              static_cast<double>(k % 7) / 100.0);
  }
  l2_normalise(e);
  return e;
}

TEST(ArcFaceTest, EmbedsNormalisedNchwChipsInto512D) {
  auto embedder = FaceEmbedder::create({fixture("w600k_r50.onnx"), 4});
  ASSERT_TRUE(embedder.ok()) << embedder.error().message;
  EXPECT_EQ((*embedder)->family(), FaceEmbedder::Family::arcface);
  EXPECT_EQ((*embedder)->dim(), 512u);
  EXPECT_EQ((*embedder)->face_template().size, 112);
  // Five uniform chips (a batch of 4, then 1), each a different colour.
  const float colours[5][3] = {{200, 100, 50}, {0, 0, 0}, {255, 255, 255}, {30, 220, 90}, {127.5f, 10, 240}};
  std::vector<float> chips;
  for (const auto& c : colours) {
    for (int p = 0; p < 112 * 112; ++p) chips.insert(chips.end(), {c[0], c[1], c[2]});
  }
  std::vector<Embedding> out;
  ASSERT_TRUE((*embedder)->embed_chips(chips, 5, out).ok());
  ASSERT_EQ(out.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    const Embedding want = arcface_fixture_embedding(colours[i][0], colours[i][1], colours[i][2]);
    ASSERT_EQ(out[i].size(), 512u);
    for (std::size_t k = 0; k < 512; ++k) ASSERT_NEAR(out[i][k], want[k], 1e-5f) << "chip " << i << " value " << k;
  }
  // A face in a frame is aligned to InsightFace's 112x112 template: a grey frame gives a grey
  // chip, so the embedding is the fixture's for that grey.
  ByteStorage storage;
  const Image frame = grey_frame(storage);
  Detection face;
  face.bbox = {600, 300, 700, 420};
  face.keypoint_count = 4;
  face.keypoints[0] = {620, 340};
  face.keypoints[1] = {680, 340};
  face.keypoints[2] = {650, 370};
  face.keypoints[3] = {650, 400};
  std::vector<float> chip(112 * 112 * 3);
  FaceAligner aligner;
  aligner.align(frame, face, chip.data(), arcface_face_template());
  const float grey = chip[0];
  for (const float v : chip) ASSERT_NEAR(v, grey, 1e-3f);
  const FaceInput input{&frame, &face};
  std::vector<FaceQuality> qualities;
  ASSERT_TRUE((*embedder)->embed(std::span(&input, 1), out, qualities).ok());
  const Embedding want = arcface_fixture_embedding(grey, grey, grey);
  for (std::size_t k = 0; k < 512; ++k) ASSERT_NEAR(out[0][k], want[k], 1e-5f) << k;
  // Descriptors of different models never match.
  Embedding dlib(128);
  dlib[0] = 1;
  EXPECT_EQ(cosine(out[0], dlib), 0.0f);
}

// A model of another family gets an error naming what was expected and what the file has.
TEST(ModelZooTest, AWrongModelIsAClearError) {
  YoloConfig yolo;
  yolo.model_path = fixture("det_10g.onnx");
  auto y = Yolo::create(yolo);
  ASSERT_FALSE(y.ok());
  EXPECT_EQ(y.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(y.error().message.find("not an Ultralytics YOLO detection model: expected 1 input [N,3,S,S] and 1 output "
                                   "[N,4+classes,anchors]; the file has 1 input [1,3,640,640] and 9 outputs"),
            std::string::npos)
      << y.error().message;

  yolo.model_path = fixture("yolo11n.onnx");
  yolo.pose = true;  // a detection model is not a pose model: 84 rows is not 5 + 3k
  y = Yolo::create(yolo);
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.error().message.find("not an Ultralytics YOLO pose model"), std::string::npos) << y.error().message;
  EXPECT_NE(y.error().message.find("[?,84,8400]"), std::string::npos) << y.error().message;

  yolo.pose = false;
  yolo.input_size = 320;
  y = Yolo::create(yolo);
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.error().message.find("input_size 320 does not match the file's 640"), std::string::npos) << y.error().message;

  ScrfdConfig scrfd;
  scrfd.model_path = fixture("yolo11n.onnx");
  auto s = Scrfd::create(scrfd);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("not an InsightFace SCRFD model"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("the file has 1 input [?,3,640,640] and 1 output [?,84,8400]"), std::string::npos)
      << s.error().message;

  scrfd.model_path = test::data_file("models/blazeface_front_128_dyn.onnx");
  s = Scrfd::create(scrfd);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("[?,128,128,3]"), std::string::npos) << s.error().message;

  auto embedder = FaceEmbedder::create({fixture("det_10g.onnx"), 4});
  ASSERT_FALSE(embedder.ok());
  EXPECT_NE(embedder.error().message.find("not a face embedder: expected 1 input [N,150,150,3] and 1 output [N,128] "
                                          "(face-api's ResNet), 1 input [N,3,112,112] and 1 output [N,D<=512] (ArcFace) or "
                                          "1 input [N,112,112,3] and 1 output [N,D<=512] (MobileFaceNet); "
                                          "the file has 1 input [1,3,640,640] and 9 outputs"),
            std::string::npos)
      << embedder.error().message;

  scrfd.model_path = fixture("det_10g.onnx");
  scrfd.max_batch = 4;  // the file takes one image
  s = Scrfd::create(scrfd);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("the file takes a batch of 1"), std::string::npos) << s.error().message;
}

}  // namespace
}  // namespace vigil
