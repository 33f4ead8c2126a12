#include "vigil/infer/model_graph.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "support/test_support.h"
#include "vigil/infer/backend.h"

namespace vigil {
namespace {

// A small ONNX graph written with the ONNX project's own protobuf classes.
class GraphFile {
 public:
  explicit GraphFile(const Dims& input_dims) {
    model_.set_ir_version(7);
    model_.add_opset_import()->set_version(13);
    auto* in = model_.mutable_graph()->add_input();
    in->set_name("x");
    auto* shape = in->mutable_type()->mutable_tensor_type();
    shape->set_elem_type(onnx::TensorProto::FLOAT);
    for (const std::int64_t d : input_dims) {
      auto* dim = shape->mutable_shape()->add_dim();
      if (d < 0) dim->set_dim_param("batch");
      else dim->set_dim_value(d);
    }
  }
  // A float constant; values follow a fixed pattern unless given.
  GraphFile& constant(const std::string& name, const Dims& dims, std::vector<float> values = {}) {
    auto* t = model_.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (const std::int64_t d : dims) t->add_dims(d);
    if (values.empty()) {
      for (std::int64_t i = 0; i < product(dims); ++i) values.push_back(std::sin(static_cast<float>(i) * 0.37f + 0.1f) * 0.5f);
    }
    for (const float v : values) t->add_float_data(v);
    return *this;
  }
  GraphFile& ints(const std::string& name, const Dims& values) {
    auto* t = model_.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<std::int64_t>(values.size()));
    for (const std::int64_t v : values) t->add_int64_data(v);
    return *this;
  }
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs, const std::string& output) {
    auto* n = model_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(output);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(output);
    return *n;
  }
  static void attr(onnx::NodeProto& n, const std::string& name, const Dims& values) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (const std::int64_t v : values) a->add_ints(v);
  }
  static void attr(onnx::NodeProto& n, const std::string& name, std::int64_t value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }
  std::string write(const test::TempDir& dir, const std::string& output) {
    auto* out_info = model_.mutable_graph()->add_output();
    out_info->set_name(output);
    out_info->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    out_info->mutable_type()->mutable_tensor_type()->mutable_shape();
    const std::string path = dir.file("graph" + std::to_string(++count_) + ".onnx");
    std::ofstream out(path, std::ios::binary);
    model_.SerializeToOstream(&out);
    return path;
  }

 private:
  onnx::ModelProto model_;
  static inline int count_ = 0;
};

// Conv -> BatchNormalization -> Relu, after a zero Pad of height and width, and a residual
// Add with a per-channel constant: the shapes the importer fuses.
std::string fusable_graph(const test::TempDir& dir) {
  GraphFile g({-1, 3, 12, 12});
  g.constant("w1", {8, 3, 3, 3}).constant("b1", {8});
  g.constant("scale", {8}).constant("shift", {8}).constant("mean", {8}).constant("var", {8}, std::vector<float>(8, 0.5f));
  g.constant("w2", {8, 1, 3, 3}).constant("bias_per_channel", {1, 8, 1, 1});
  g.ints("pads", {0, 0, 1, 1, 0, 0, 1, 1});
  g.node("Pad", {"x", "pads"}, "padded");
  GraphFile::attr(g.node("Conv", {"padded", "w1", "b1"}, "c1"), "kernel_shape", Dims{3, 3});
  g.node("BatchNormalization", {"c1", "scale", "shift", "mean", "var"}, "bn");
  g.node("Relu", {"bn"}, "r1");
  auto& dw = g.node("Conv", {"r1", "w2"}, "c2");
  GraphFile::attr(dw, "group", 8);
  GraphFile::attr(dw, "kernel_shape", Dims{3, 3});
  GraphFile::attr(dw, "pads", Dims{1, 1, 1, 1});
  g.node("Add", {"c2", "bias_per_channel"}, "biased");
  g.node("Add", {"biased", "r1"}, "sum");
  g.node("Relu", {"sum"}, "y");
  return g.write(dir, "y");
}

std::size_t count(const ModelGraph& g, OpKind kind) {
  return static_cast<std::size_t>(std::count_if(g.ops.begin(), g.ops.end(), [&](const GraphOp& op) { return op.kind == kind; }));
}

TEST(ModelGraphTest, PadsBatchNormBiasAndActivationsAreFusedIntoTheirConvolutions) {
  test::TempDir dir;
  const std::string path = fusable_graph(dir);
  auto plain = import_onnx_model(path, {{}, false});
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->ops.size(), 8u);
  auto g = import_onnx_model(path);
  ASSERT_TRUE(g.ok()) << g.error().message;
  // conv (pad, BN and Relu in it), conv (bias Add in it), Add (Relu in it).
  ASSERT_EQ(g->ops.size(), 3u);
  const GraphOp& c1 = g->ops[0];
  EXPECT_EQ(c1.kind, OpKind::conv);
  EXPECT_EQ(c1.inputs[0], "x");
  EXPECT_EQ(c1.window.pads, (std::array<std::int64_t, 4>{1, 1, 1, 1}));
  EXPECT_EQ(c1.activation.kind, Activation::relu);
  EXPECT_EQ(c1.output, "r1");
  EXPECT_EQ(g->ops[1].kind, OpKind::conv);
  EXPECT_EQ(g->ops[1].group, 8);
  EXPECT_EQ(g->ops[1].output, "biased");
  EXPECT_EQ(g->ops[2].kind, OpKind::binary);
  EXPECT_EQ(g->ops[2].activation.kind, Activation::relu);
  // Liveness: r1 is read last by the residual Add; the output lives to the end.
  EXPECT_EQ(g->last_use.at("r1"), 2);
  EXPECT_EQ(g->readers.at("r1"), 2);
  EXPECT_EQ(g->last_use.at("y"), ModelGraph::kOutput);
  auto shapes = g->shapes(5);
  ASSERT_TRUE(shapes.ok());
  EXPECT_EQ(shapes->at("y"), (Dims{5, 8, 12, 12}));
}

// Fused, the graph computes what OpenCV DNN computes from the file as written.
TEST(ModelGraphTest, FusedGraphsComputeWhatTheFileSays) {
  test::TempDir dir;
  const std::string path = fusable_graph(dir);
  Tensor input({3, 3, 12, 12});
  for (std::size_t i = 0; i < input.size(); ++i) input.data()[i] = std::cos(static_cast<float>(i) * 0.11f);
  auto reference = create_opencv_backend({path, {}, BackendKind::opencv});
  ASSERT_TRUE(reference.ok()) << reference.error().message;
  std::vector<Tensor> want;
  const Status reference_status = (*reference)->infer(input, want);
  ASSERT_TRUE(reference_status.ok()) << reference_status.error().message;
  for (const BackendKind kind : {BackendKind::onednn, BackendKind::xnnpack}) {
    BackendOptions options{path, {}, kind};
    options.max_chunk = 2;  // chunks of 2 and 1
    auto backend = create_backend(options);
    ASSERT_TRUE(backend.ok()) << backend.error().message;
    std::vector<Tensor> got;
    const Status s = (*backend)->infer(input, got);
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_EQ(got.size(), 1u);
    ASSERT_EQ(got[0].shape(), want[0].shape()) << to_string(kind);
    float worst = 0;
    for (std::size_t i = 0; i < want[0].size(); ++i) worst = std::max(worst, std::abs(want[0].data()[i] - got[0].data()[i]));
    EXPECT_LT(worst, 1e-4f) << to_string(kind);
  }
}

// Bilinear Resize by 2 in each coordinate mode, on XNNPACK, against the ONNX definition
// computed here (coordinates clamped to the input, as ONNX and TensorFlow do).
TEST(ModelGraphTest, BilinearResizeInEachCoordinateModeComputesWhatOnnxDefines) {
  test::TempDir dir;
  const std::int64_t h = 5, w = 6;
  Tensor input({2, 3, h, w});
  for (std::size_t i = 0; i < input.size(); ++i) input.data()[i] = std::cos(static_cast<float>(i) * 0.37f);
  for (const std::string mode : {"half_pixel", "asymmetric", "align_corners"}) {
    SCOPED_TRACE(mode);
    GraphFile g({-1, 3, h, w});
    g.constant("scales", {4}, {1, 1, 2, 2});
    auto& n = g.node("Resize", {"x", "", "scales"}, "y");
    for (const auto& [key, value] : {std::pair<std::string, std::string>{"mode", "linear"}, {"coordinate_transformation_mode", mode}}) {
      auto* a = n.add_attribute();
      a->set_name(key);
      a->set_type(onnx::AttributeProto::STRING);
      a->set_s(value);
    }
    const std::string path = g.write(dir, "y");
    auto graph = import_onnx_model(path);
    ASSERT_TRUE(graph.ok()) << graph.error().message;
    ASSERT_EQ(graph->ops.size(), 1u);
    EXPECT_EQ(graph->ops[0].kind, OpKind::resize);
    auto backend = create_backend({path, {}, BackendKind::xnnpack});
    ASSERT_TRUE(backend.ok()) << backend.error().message;
    std::vector<Tensor> got;
    ASSERT_TRUE((*backend)->infer(input, got).ok());
    ASSERT_EQ(got[0].shape(), (std::vector<std::int64_t>{2, 3, 2 * h, 2 * w}));
    const auto source = [&](std::int64_t out, std::int64_t in) {
      double v = mode == "half_pixel" ? (static_cast<double>(out) + 0.5) / 2.0 - 0.5
                 : mode == "asymmetric" ? static_cast<double>(out) / 2.0
                                        : static_cast<double>(out) * static_cast<double>(in - 1) / static_cast<double>(2 * in - 1);
      return std::clamp(v, 0.0, static_cast<double>(in - 1));
    };
    double worst = 0;
    for (std::int64_t plane = 0; plane < 6; ++plane) {
      const float* src = input.data() + plane * h * w;
      const float* dst = got[0].data() + plane * 4 * h * w;
      for (std::int64_t y = 0; y < 2 * h; ++y) {
        for (std::int64_t x = 0; x < 2 * w; ++x) {
          const double sy = source(y, h), sx = source(x, w);
          const auto y0 = static_cast<std::int64_t>(sy), x0 = static_cast<std::int64_t>(sx);
          const std::int64_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
          const double fy = sy - static_cast<double>(y0), fx = sx - static_cast<double>(x0);
          const double want = (1 - fy) * ((1 - fx) * src[y0 * w + x0] + fx * src[y0 * w + x1]) +
                              fy * ((1 - fx) * src[y1 * w + x0] + fx * src[y1 * w + x1]);
          worst = std::max(worst, std::abs(want - static_cast<double>(dst[y * 2 * w + x])));
        }
      }
    }
    EXPECT_LT(worst, 1e-5);
  }
  // Nearest-neighbour resizing is not taken: one line naming the node and the mode.
  GraphFile g({-1, 3, h, w});
  g.constant("scales", {4}, {1, 1, 2, 2});
  g.node("Resize", {"x", "", "scales"}, "y");
  auto graph = import_onnx_model(g.write(dir, "y"));
  ASSERT_FALSE(graph.ok());
  EXPECT_NE(graph.error().message.find("mode nearest"), std::string::npos) << graph.error().message;
  EXPECT_NE(graph.error().message.find("Resize"), std::string::npos) << graph.error().message;
}

TEST(ModelGraphTest, ConstantsAreFoldedBeforeTheyReachABackend) {
  test::TempDir dir;
  GraphFile g({-1, 4, 2, 2});
  g.ints("head", {0}).ints("tail", {-1});
  GraphFile::attr(g.node("Concat", {"head", "tail"}, "target"), "axis", 0);
  g.constant("a", {1, 4, 1, 1}, {1, 2, 3, 4}).constant("b", {1}, {10});
  g.node("Mul", {"a", "b"}, "scaled");  // constants only: folded
  g.node("Mul", {"x", "scaled"}, "m");
  g.node("Reshape", {"m", "target"}, "y");
  auto graph = import_onnx_model(g.write(dir, "y"));
  ASSERT_TRUE(graph.ok()) << graph.error().message;
  ASSERT_EQ(graph->ops.size(), 2u);
  const OnnxTensor* scaled = graph->constant("scaled");
  ASSERT_NE(scaled, nullptr);
  EXPECT_EQ(scaled->floats, (std::vector<float>{10, 20, 30, 40}));
  EXPECT_EQ(graph->ops[1].shape, (Dims{0, -1}));
  auto shapes = graph->shapes(3);
  ASSERT_TRUE(shapes.ok());
  EXPECT_EQ(shapes->at("y"), (Dims{3, 16}));
}

TEST(ModelGraphTest, TheShippedModelsImportWithEveryActivationFused) {
  for (const std::string file : {"models/blazeface_front_128_dyn.onnx", "models/blazeface_back_256_dyn.onnx",
                                 "models/face_recognition_128.onnx"}) {
    auto g = import_onnx_model(test::data_file(file));
    ASSERT_TRUE(g.ok()) << g.error().message;
    EXPECT_EQ(count(*g, OpKind::activation), 0u) << file;
    EXPECT_GT(count(*g, OpKind::conv), 25u) << file;
    auto one = g->shapes(1), eight = g->shapes(8);
    ASSERT_TRUE(one.ok() && eight.ok()) << file;
    for (const std::string& o : g->outputs) {
      EXPECT_EQ(one->at(o)[0], 1) << file << " " << o;
      EXPECT_EQ(eight->at(o)[0], 8) << file << " " << o;
    }
  }
}

// Hostile or unsupported graphs: a clear error naming the node, never a crash.
TEST(ModelGraphTest, GraphsItCannotTakeAreErrorsNamingTheNode) {
  test::TempDir dir;
  const auto error_of = [&](GraphFile& g, const std::string& output) {
    auto graph = import_onnx_model(g.write(dir, output));
    EXPECT_FALSE(graph.ok());
    return graph.ok() ? std::string() : graph.error().message;
  };
  {
    GraphFile g({1, 3, 8, 8});
    g.node("Conv", {"x", "missing_weights"}, "y");
    EXPECT_NE(error_of(g, "y").find("weights must be a 4-D float constant (Conv 'y')"), std::string::npos);
  }
  {
    GraphFile g({1, 3, 8, 8});
    g.node("Erf", {"x"}, "y");
    EXPECT_NE(error_of(g, "y").find("operator Erf is not supported by vigil's ONNX importer (Erf 'y')"), std::string::npos);
  }
  {
    GraphFile g({1, 3, 8, 8});
    g.node("Relu", {"later"}, "y");  // reads a value made after it: a cycle or a bad order
    g.node("Relu", {"x"}, "later");
    EXPECT_NE(error_of(g, "y").find("is not computed before this node"), std::string::npos);
  }
  {
    GraphFile g({1, 3, 8, 8});
    g.ints("pads", {0, 0, -1, 0, 0, 0, 0, 0});
    g.node("Pad", {"x", "pads"}, "y");
    EXPECT_NE(error_of(g, "y").find("negative pads"), std::string::npos);
  }
  {
    GraphFile g({1, 3, 8, 8});
    g.constant("w", {4, 2, 3, 3});
    g.node("Conv", {"x", "w"}, "y");
    EXPECT_NE(error_of(g, "y").find("do not fit input"), std::string::npos);
  }
  {
    GraphFile g({1, 3, -1, 8});
    g.node("Relu", {"x"}, "y");
    EXPECT_NE(error_of(g, "y").find("needs fixed sizes after the batch axis"), std::string::npos);
  }
  {
    GraphFile g({1, 4});
    g.ints("shape", {3, -1});
    g.node("Reshape", {"x", "shape"}, "y");
    EXPECT_NE(error_of(g, "y").find("cannot reshape [1,4] to"), std::string::npos);
  }
}

}  // namespace
}  // namespace vigil
