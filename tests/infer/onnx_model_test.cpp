#include <gtest/gtest.h>

#include "support/test_support.h"
#include "vigil/infer/onnx_model.h"

namespace vigil {
namespace {

TEST(OnnxModelTest, ReadsTheSignatureAndGraphOfBlazeFace) {
  auto model = read_onnx_model(test::data_file("models/blazeface_front_128_dyn.onnx"));
  ASSERT_TRUE(model.ok()) << model.error().message;
  ASSERT_EQ(model->inputs.size(), 1u);
  EXPECT_EQ(model->inputs[0].name, "input:0");
  EXPECT_EQ(dims_string(model->inputs[0].dims), "[?,128,128,3]");
  ASSERT_EQ(model->outputs.size(), 4u);
  EXPECT_EQ(model->outputs[0].name, "Identity:0");
  EXPECT_EQ(model->opset, 12);
  const auto convs = std::count_if(model->nodes.begin(), model->nodes.end(), [](const OnnxNode& n) { return n.op == "Conv"; });
  EXPECT_EQ(convs, 37);
  const OnnxNode& first_conv = model->nodes[1];
  ASSERT_EQ(first_conv.op, "Conv");
  EXPECT_EQ(first_conv.attr_ints("strides"), (std::vector<std::int64_t>{2, 2}));
  const OnnxTensor* weights = model->constant(first_conv.inputs[1]);
  ASSERT_NE(weights, nullptr);
  EXPECT_EQ(dims_string(weights->dims), "[24,3,5,5]");
  EXPECT_EQ(weights->floats.size(), 24u * 3 * 5 * 5);
}

TEST(OnnxModelTest, MissingAndDamagedFilesAreClearErrors) {
  auto missing = read_onnx_model("/nonexistent.onnx");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  test::TempDir dir;
  // The first kilobyte of a real model: a truncated download.
  const std::string truncated = dir.file("truncated.onnx");
  ASSERT_EQ(test::run_command("head -c 1024 '" + test::data_file("models/blazeface_front_128_dyn.onnx") + "' > '" +
                              truncated + "'"),
            0);
  auto damaged = read_onnx_model(truncated);
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(damaged.error().message.find("not an ONNX model"), std::string::npos) << damaged.error().message;
}

}  // namespace
}  // namespace vigil
