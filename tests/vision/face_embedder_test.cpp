// Face alignment and the face embedder with the real converted model
// (tools/faceapi_recognition_onnx.py) on face-api's sample photos.
#include "vigil/vision/face_embedder.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <fstream>

#include "support/test_support.h"
#include "vigil/source/image_file.h"
#include "vigil/vision/blazeface.h"

namespace vigil {
namespace {

TEST(FaceAlignTest, FitSimilarityRecoversAKnownTransform) {
  Similarity truth;
  const float angle = 0.3f, scale = 1.7f;
  truth.a = scale * std::cos(angle);
  truth.b = scale * std::sin(angle);
  truth.tx = 12.5f;
  truth.ty = -40.0f;
  const std::vector<Point2> src = {{10, 20}, {60, 22}, {35, 50}, {36, 80}};
  std::vector<Point2> dst;
  for (const Point2& p : src) dst.push_back(truth.apply(p));
  const Similarity fit = fit_similarity(src, dst);
  EXPECT_NEAR(fit.a, truth.a, 1e-4);
  EXPECT_NEAR(fit.b, truth.b, 1e-4);
  EXPECT_NEAR(fit.tx, truth.tx, 1e-3);
  EXPECT_NEAR(fit.ty, truth.ty, 1e-3);
  EXPECT_NEAR(fit.scale(), scale, 1e-4);
  const Point2 back = fit.inverse().apply(fit.apply({5, 7}));
  EXPECT_NEAR(back.x, 5, 1e-3);
  EXPECT_NEAR(back.y, 7, 1e-3);
}

TEST(FaceAlignTest, DegeneratePointsGiveTheIdentity) {
  const std::vector<Point2> same = {{3, 3}, {3, 3}};
  const Similarity t = fit_similarity(same, same);
  EXPECT_EQ(t.a, 1.0f);
  EXPECT_EQ(t.b, 0.0f);
}

TEST(FaceAlignTest, KeypointsLandOnTheTemplate) {
  // A face whose keypoints are the template rotated by 20 degrees, scaled 2x and moved.
  Detection d;
  d.keypoint_count = 6;
  Similarity t;
  t.a = 2.0f * std::cos(0.35f);
  t.b = 2.0f * std::sin(0.35f);
  t.tx = 300;
  t.ty = 120;
  for (int i = 0; i < 4; ++i) d.keypoints[static_cast<std::size_t>(i)] = t.apply(face_chip_template()[static_cast<std::size_t>(i)]);
  const Similarity to_chip = face_chip_transform(d);
  for (int i = 0; i < 4; ++i) {
    const Point2 p = to_chip.apply(d.keypoints[static_cast<std::size_t>(i)]);
    EXPECT_NEAR(p.x, face_chip_template()[static_cast<std::size_t>(i)].x, 1e-2);
    EXPECT_NEAR(p.y, face_chip_template()[static_cast<std::size_t>(i)].y, 1e-2);
  }
}

TEST(FaceAlignTest, FrontalnessFallsWhenTheNoseMovesTowardAnEye) {
  Detection d;
  d.score = 0.9f;
  d.keypoint_count = 6;
  d.keypoints[0] = {100, 100};
  d.keypoints[1] = {160, 100};
  d.keypoints[2] = {130, 130};
  const FaceQuality frontal = face_quality_from_keypoints(d);
  EXPECT_NEAR(frontal.frontal, 1.0f, 1e-5);
  EXPECT_NEAR(frontal.size, 1.0f, 1e-5);  // 60 px between the eyes
  d.keypoints[2] = {110, 130};
  const FaceQuality turned = face_quality_from_keypoints(d);
  EXPECT_LT(turned.frontal, 0.4f);
}

TEST(FaceAlignTest, ChipIsSampledFromYuvPlanesWithTheFramesColours) {
  // A flat orange frame in YUV420P: every chip pixel must come out that orange.
  ByteStorage storage;
  Image image = storage.allocate(PixelFormat::yuv420p, 64, 48);
  const std::uint8_t y = 150, u = 60, v = 200;  // video range
  for (int p = 0; p < 3; ++p) {
    for (int row = 0; row < image.plane_height(p); ++row) {
      auto* dst = const_cast<std::uint8_t*>(image.planes[p].data) + row * image.planes[p].stride;
      std::fill(dst, dst + image.plane_width(p), p == 0 ? y : p == 1 ? u : v);
    }
  }
  Detection d;
  d.score = 1;
  d.bbox = {10, 10, 40, 40};
  std::vector<float> chip(static_cast<std::size_t>(kFaceChipSize) * kFaceChipSize * 3);
  FaceAligner aligner;
  const FaceQuality q = aligner.align(image, d, chip.data());
  const float luma = 1.164383f * (y - 16);
  const float r = std::clamp(luma + 1.596027f * (v - 128), 0.0f, 255.0f);
  const float b = std::clamp(luma + 2.017232f * (u - 128), 0.0f, 255.0f);
  EXPECT_NEAR(chip[0], r, 0.5);
  EXPECT_NEAR(chip[2], b, 0.5);
  EXPECT_NEAR(chip[chip.size() - 3], r, 0.5);
  EXPECT_NEAR(q.sharpness, 0.0f, 1e-3);  // a flat picture has no edges
}

// The same photo as BGR: planes of a YUV420P image put side by side as B, G, R (colours do
// not matter here, only that the BGR path samples three channels).
Image as_bgr(const Image& yuv, ByteStorage& storage) {
  Image bgr = storage.allocate(PixelFormat::bgr24, yuv.width, yuv.height);
  for (int row = 0; row < yuv.height; ++row) {
    auto* out = const_cast<std::uint8_t*>(bgr.planes[0].data) + row * bgr.planes[0].stride;
    const std::uint8_t* y = yuv.planes[0].data + row * yuv.planes[0].stride;
    const std::uint8_t* u = yuv.planes[1].data + (row / 2) * yuv.planes[1].stride;
    const std::uint8_t* v = yuv.planes[2].data + (row / 2) * yuv.planes[2].stride;
    for (int x = 0; x < yuv.width; ++x) {
      out[3 * x] = y[x];
      out[3 * x + 1] = u[x / 2];
      out[3 * x + 2] = v[x / 2];
    }
  }
  return bgr;
}

class FaceEmbedderTest : public ::testing::Test {
 protected:
  static std::unique_ptr<FaceEmbedder> embedder(int max_batch) {
    auto e = FaceEmbedder::create({test::data_file("models/face_recognition_128.onnx"), max_batch});
    EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
    return e.ok() ? std::move(e).value() : nullptr;
  }
  static Detections faces(const Image& image) {
    BlazeFaceConfig config;
    config.model_path = test::data_file("models/blazeface_back_256_dyn.onnx");
    config.input_size = 256;
    config.max_batch = 1;
    config.score_threshold = 0.6f;
    auto detector = BlazeFace::create(config);
    EXPECT_TRUE(detector.ok());
    std::vector<Detections> out;
    const Image* p = &image;
    EXPECT_TRUE((*detector)->detect(std::span(&p, 1), out).ok());
    return out.at(0);
  }
};

TEST_F(FaceEmbedderTest, WrongModelFileIsAClearError) {
  test::TempDir dir;
  auto wrong = FaceEmbedder::create({test::data_file("models/blazeface_front_128_dyn.onnx"), 4});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(wrong.error().message.find("not a face embedder"), std::string::npos) << wrong.error().message;
  EXPECT_NE(wrong.error().message.find("the file has 1 input [?,128,128,3] and 4 outputs"), std::string::npos)
      << wrong.error().message;
  std::ofstream(dir.file("garbage.onnx")) << "not a model";
  auto garbage = FaceEmbedder::create({dir.file("garbage.onnx"), 4});
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, ErrorCode::invalid_argument);
}

// measure() gives align()'s quality bit for bit (so the harvest can score every face and
// align only those it keeps), for large faces (n x n samples per chip pixel) and small ones,
// YUV and BGR frames, both chip templates.
TEST_F(FaceEmbedderTest, MeasuringAFaceGivesTheQualityOfAligningIt) {
  int compared = 0;
  for (const double scale : {1.0, 0.35}) {
    auto photo = read_image_file(test::data_file("media/sample4.jpg"), scale);
    ASSERT_TRUE(photo.ok());
    ByteStorage storage;
    const Image bgr = as_bgr(photo->image, storage);
    const Detections found = faces(photo->image);
    ASSERT_FALSE(found.empty()) << "scale " << scale;
    for (const Image* image : std::initializer_list<const Image*>{&photo->image, &bgr}) {
      for (const FaceTemplate* face : {&dlib_face_template(), &arcface_face_template()}) {
        for (const Detection& d : found) {
          FaceAligner aligner, measurer;
          std::vector<float> chip(static_cast<std::size_t>(face->size) * static_cast<std::size_t>(face->size) * 3);
          const FaceQuality aligned = aligner.align(*image, d, chip.data(), *face);
          const FaceQuality measured = measurer.measure(*image, d, *face);
          EXPECT_GT(aligned.sharpness, 0.0f);
          EXPECT_EQ(std::bit_cast<std::uint32_t>(measured.sharpness), std::bit_cast<std::uint32_t>(aligned.sharpness));
          EXPECT_EQ(std::bit_cast<std::uint32_t>(measured.value()), std::bit_cast<std::uint32_t>(aligned.value()));
          ++compared;
        }
      }
    }
  }
  EXPECT_GE(compared, 12);
}

TEST_F(FaceEmbedderTest, BatchedAndSingleEmbeddingsAgreeAndAreNormalised) {
  auto photo = read_image_file(test::data_file("media/sample4.jpg"));
  ASSERT_TRUE(photo.ok());
  const Detections found = faces(photo->image);
  ASSERT_EQ(found.size(), 4u);
  std::vector<FaceInput> in;
  for (const Detection& d : found) in.push_back({&photo->image, &d});
  auto batched = embedder(16);
  auto single = embedder(1);
  ASSERT_TRUE(batched && single);
  std::vector<Embedding> a, b;
  std::vector<FaceQuality> qa, qb;
  ASSERT_TRUE(batched->embed(in, a, qa).ok());
  ASSERT_TRUE(single->embed(in, b, qb).ok());
  EXPECT_EQ(batched->calls(), 1u);
  EXPECT_EQ(single->calls(), 4u);
  for (std::size_t i = 0; i < in.size(); ++i) {
    EXPECT_NEAR(cosine(a[i], a[i]), 1.0f, 1e-5);
    EXPECT_GE(cosine(a[i], b[i]), 0.9999f);
    EXPECT_GT(qa[i].value(), 0.0f);
  }
}

TEST_F(FaceEmbedderTest, TheSameFaceIsCloserThanOtherPeople) {
  // Sample 6 and its mirrored, 0.6x copy: each face is nearer to itself than to anyone else.
  const std::string path = test::data_file("media/sample6.jpg");
  auto a = read_image_file(path);
  auto b = read_image_file(path, 0.6, true);
  ASSERT_TRUE(a.ok() && b.ok());
  const Detections fa = faces(a->image), fb = faces(b->image);
  ASSERT_EQ(fa.size(), 4u);
  ASSERT_EQ(fb.size(), 4u);
  auto e = embedder(8);
  std::vector<FaceInput> ia, ib;
  for (const Detection& d : fa) ia.push_back({&a->image, &d});
  for (const Detection& d : fb) ib.push_back({&b->image, &d});
  std::vector<Embedding> ea, eb;
  std::vector<FaceQuality> q;
  ASSERT_TRUE(e->embed(ia, ea, q).ok());
  ASSERT_TRUE(e->embed(ib, eb, q).ok());
  const float w = static_cast<float>(a->image.width);
  for (std::size_t i = 0; i < fa.size(); ++i) {
    // The mirrored face: the detection in b nearest to i's mirrored centre.
    const float cx = (w - (fa[i].bbox.x1 + fa[i].bbox.x2) * 0.5f) * 0.6f;
    std::size_t twin = 0;
    for (std::size_t j = 1; j < fb.size(); ++j) {
      if (std::abs((fb[j].bbox.x1 + fb[j].bbox.x2) * 0.5f - cx) < std::abs((fb[twin].bbox.x1 + fb[twin].bbox.x2) * 0.5f - cx)) twin = j;
    }
    for (std::size_t j = 0; j < fa.size(); ++j) {
      if (j != i) {
        EXPECT_GT(cosine(ea[i], eb[twin]), cosine(ea[i], ea[j]) + 0.02f) << "face " << i << " vs " << j;
      }
    }
  }
}

}  // namespace
}  // namespace vigil
