// MoveNet MultiPose (real weights, converted by tools/tfjs_graph_onnx.py) against the model's
// own post-processing as TensorFlow.js runs it (the graph's `Identity:0`, kept by
// scripts/fetch_models.sh for three real photos): the same 6 people, boxes, keypoints within
// 1 px of the input and scores; and the detector on frames of a real video finds people.
#include "vigil/vision/movenet.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "support/test_support.h"

namespace vigil {
namespace {


MoveNetConfig config(BackendKind kind) {
  MoveNetConfig c;
  c.model_path = test::data_file("models/human/movenet-multipose.onnx");
  c.backend = kind;
  c.max_batch = 1;
  return c;
}

TEST(MoveNetTest, DecodesEveryPersonAsTheModelsOwnPostProcessingDoes) {
  const std::string dir = test::data_file("models/human/reference/movenet-multipose");
  const auto reference = nlohmann::json::parse(test::read_file(dir + "/reference.json"));
  auto backend = create_backend({test::data_file("models/human/movenet-multipose.onnx"), MoveNet::output_names(), BackendKind::opencv});
  ASSERT_TRUE(backend.ok()) << backend.error().message;
  auto net = MoveNet::create(config(BackendKind::opencv));
  ASSERT_TRUE(net.ok()) << net.error().message;
  int people = 0;
  for (const auto& [file, shapes] : reference["shapes"].items()) {
    SCOPED_TRACE(file);
    const std::string pixels = test::read_file(dir + "/inputs/" + file);
    ASSERT_EQ(pixels.size(), 256u * 256 * 3);
    Tensor input({1, 256, 256, 3});
    for (std::size_t i = 0; i < pixels.size(); ++i) input.data()[i] = static_cast<unsigned char>(pixels[i]);
    std::vector<Tensor> outputs;
    ASSERT_TRUE((*backend)->infer(input, outputs).ok());
    std::array<MoveNetPerson, MoveNet::kPeople> decoded;
    (*net)->decode_people(outputs, 0, decoded);
    const auto expected = test::read_floats(dir + "/" + file + ".Identity_0.f32");
    ASSERT_EQ(expected.size(), 6u * 56);
    for (int p = 0; p < MoveNet::kPeople; ++p) {
      const float* e = expected.data() + p * 56;
      const MoveNetPerson& got = decoded[static_cast<std::size_t>(p)];
      EXPECT_NEAR(got.person_score, e[55], 1e-4) << "person " << p;
      EXPECT_NEAR(got.ymin, e[51], 1e-4);
      EXPECT_NEAR(got.xmin, e[52], 1e-4);
      EXPECT_NEAR(got.ymax, e[53], 1e-4);
      EXPECT_NEAR(got.xmax, e[54], 1e-4);
      for (int k = 0; k < MoveNet::kKeypoints; ++k) {
        EXPECT_NEAR(got.y[static_cast<std::size_t>(k)] * 256, e[3 * k] * 256, 1.0) << "person " << p << " keypoint " << k;
        EXPECT_NEAR(got.x[static_cast<std::size_t>(k)] * 256, e[3 * k + 1] * 256, 1.0) << "person " << p << " keypoint " << k;
        EXPECT_NEAR(got.score[static_cast<std::size_t>(k)], e[3 * k + 2], 1e-4) << "person " << p << " keypoint " << k;
      }
      people += e[55] > 0.2f;
    }
  }
  EXPECT_GE(people, 4);  // the group photos have people the model is sure of
}

TEST(MoveNetTest, FindsThePedestriansOfARealVideoWithTheirKeypoints) {
  test::TempDir dir;
  // Ten frames of vtest.avi (768x576, pedestrians), 40 frames apart, through Debian's ffmpeg.
  ASSERT_EQ(test::run_command("ffmpeg -nostdin -v error -i " + test::data_file("media/vtest.avi") +
                              " -vf \"select=not(mod(n\\,40))\" -vsync 0 -frames:v 10 " + dir.file("f%02d.png")),
            0);
  auto net = MoveNet::create(config(BackendKind::automatic));
  ASSERT_TRUE(net.ok()) << net.error().message;
  MoveNetConfig batched = config(BackendKind::automatic);
  batched.max_batch = 4;
  auto net4 = MoveNet::create(batched);
  ASSERT_TRUE(net4.ok()) << net4.error().message;
  std::vector<cv::Mat> mats;
  std::vector<Image> frames(10);
  std::vector<const Image*> all;
  for (int i = 1; i <= 10; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "f%02d.png", i);
    mats.push_back(cv::imread(dir.file(name), cv::IMREAD_COLOR));
    ASSERT_FALSE(mats.back().empty()) << name;
    Image& image = frames[static_cast<std::size_t>(i - 1)];
    image.format = PixelFormat::bgr24;
    image.width = mats.back().cols;
    image.height = mats.back().rows;
    image.planes[0] = {mats.back().data, static_cast<int>(mats.back().step)};
    all.push_back(&image);
  }
  std::vector<Detections> together;
  ASSERT_TRUE((*net4)->detect(all, together).ok());  // batches of 4, 4 and 2
  int with_people = 0, people = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const Image& image = frames[i];
    const Image* images[] = {&image};
    std::vector<Detections> results;
    ASSERT_TRUE((*net)->detect(images, results).ok());
    with_people += !results[0].empty();
    ASSERT_EQ(together[i].size(), results[0].size()) << "frame " << i << ": batched and alone differ";
    for (std::size_t j = 0; j < results[0].size(); ++j) {
      const Detection& d = results[0][j];
      ++people;
      EXPECT_EQ(d.class_id, 0);
      EXPECT_EQ(d.keypoint_count, 17);
      EXPECT_GT(d.bbox.area(), 0);
      EXPECT_LE(d.bbox.x2, image.width);
      EXPECT_LE(d.bbox.y2, image.height);
      EXPECT_NEAR(together[i][j].bbox.x1, d.bbox.x1, 0.01);
      EXPECT_NEAR(together[i][j].keypoints[0].y, d.keypoints[0].y, 0.01);
    }
  }
  std::printf("vtest.avi: people in %d of 10 frames, %d in all\n", with_people, people);
  EXPECT_GE(with_people, 5);  // 6 here: people 60-100 px tall are 20-35 px at 256
}

TEST(MoveNetTest, AModelOfAnotherKindIsOneLineNamingWhatWasExpected) {
  MoveNetConfig c = config(BackendKind::opencv);
  c.model_path = test::data_file("models/human/mobilefacenet.onnx");
  auto net = MoveNet::create(c);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.error().message.find("not a MoveNet MultiPose model"), std::string::npos) << net.error().message;
  EXPECT_EQ(net.error().message.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace vigil
