#include <gtest/gtest.h>

#include <cstdlib>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "support/test_support.h"
#include "vigil/infer/backend.h"
#include "vigil/infer/graph_backend.h"

namespace vigil {
namespace {

// A deterministic pattern in [-1, 1] (real-image agreement is checked through the detector).
void fill_pattern(Tensor& t, unsigned seed) {
  for (std::size_t i = 0; i < t.size(); ++i) {
    t.data()[i] = static_cast<float>(((i + seed) * 7919u) % 255u) / 127.5f - 1.0f;
  }
}

struct ShippedModel {
  std::string file;
  std::vector<std::string> outputs;
  int size;
  float scale;  // input scale (the descriptor takes pixel values)
};

const std::vector<ShippedModel>& shipped_models() {
  static const std::vector<ShippedModel> models = {
      {"models/blazeface_front_128_dyn.onnx", {"Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"}, 128, 1.0f},
      {"models/blazeface_back_256_dyn.onnx", {"Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"}, 256, 1.0f},
      {"models/face_recognition_128.onnx", {}, 150, 127.5f},
  };
  return models;
}

// The chunk a model is calibrated for is measured once per process, backend and thread count:
// the next instance (one per worker) takes it without running the model.
TEST(XnnpackBackendTest, AModelIsCalibratedOncePerThreadCount) {
  test::TempDir dir;
  const std::string copy = (dir.path() / "blazeface.onnx").string();  // a path no other test calibrated
  std::filesystem::copy_file(test::data_file("models/blazeface_front_128_dyn.onnx"), copy);
  BackendOptions options{copy, {}, BackendKind::xnnpack};
  options.threads = 1;
  const std::uint64_t before = GraphBackend::calibrations_measured();
  auto first = create_xnnpack_backend(options);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(GraphBackend::calibrations_measured(), before + 1);
  auto second = create_xnnpack_backend(options);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(GraphBackend::calibrations_measured(), before + 1) << "the second instance measured again";
  EXPECT_EQ(dynamic_cast<GraphBackend&>(**second).max_chunk(), dynamic_cast<GraphBackend&>(**first).max_chunk());
  options.threads = 2;
  ASSERT_TRUE(create_xnnpack_backend(options).ok());
  EXPECT_EQ(GraphBackend::calibrations_measured(), before + 2) << "another thread count is measured for itself";
  options.threads = 1;
  options.max_chunk = 4;
  ASSERT_TRUE(create_xnnpack_backend(options).ok());
  EXPECT_EQ(GraphBackend::calibrations_measured(), before + 2) << "a chunk the options give is not measured";
}

// Each item of a batch of 5 (runtimes of 4 and 1) matches OpenCV DNN's fp32 result for it.
TEST(XnnpackBackendTest, MatchesOpenCvOnTheShippedModels) {
  for (const ShippedModel& m : shipped_models()) {
    auto reference = create_opencv_backend({test::data_file(m.file), m.outputs, BackendKind::opencv});
    BackendOptions options{test::data_file(m.file), m.outputs, BackendKind::xnnpack};
    options.max_chunk = 4;  // 5 = runtimes of 4 and 1
    auto fast = create_xnnpack_backend(options);
    ASSERT_TRUE(reference.ok()) << reference.error().message;
    ASSERT_TRUE(fast.ok()) << fast.error().message;
    EXPECT_EQ((*fast)->name(), "xnnpack");
    Tensor input({5, m.size, m.size, 3});
    fill_pattern(input, 3);
    for (std::size_t i = 0; i < input.size(); ++i) input.data()[i] = input.data()[i] * m.scale + (m.scale > 1 ? m.scale : 0);
    std::vector<Tensor> want, got;
    ASSERT_TRUE((*reference)->infer(input, want).ok());
    ASSERT_TRUE((*fast)->infer(input, got).ok());
    ASSERT_EQ(want.size(), got.size()) << m.file;
    for (std::size_t o = 0; o < want.size(); ++o) {
      ASSERT_EQ(want[o].shape(), got[o].shape()) << m.file << " output " << o;
      float worst = 0, largest = 0;
      for (std::size_t i = 0; i < want[o].size(); ++i) {
        worst = std::max(worst, std::abs(want[o].data()[i] - got[o].data()[i]));
        largest = std::max(largest, std::abs(want[o].data()[i]));
      }
      EXPECT_LT(worst, 1e-4f * std::max(1.0f, largest)) << m.file << " output " << o << " (largest " << largest << ")";
    }
  }
}

// The same backend called with batches of different sizes gives each item the same answer.
TEST(XnnpackBackendTest, AnItemsResultDoesNotDependOnItsBatch) {
  const ShippedModel& m = shipped_models()[0];
  BackendOptions options{test::data_file(m.file), m.outputs, BackendKind::xnnpack};
  options.max_chunk = 8;  // 7 = runtimes of 4, 2 and 1
  auto fast = create_xnnpack_backend(options);
  ASSERT_TRUE(fast.ok());
  Tensor seven({7, m.size, m.size, 3});
  fill_pattern(seven, 11);
  Tensor last({1, m.size, m.size, 3});
  std::copy_n(seven.item(6), last.size(), last.data());
  std::vector<Tensor> a, b;
  ASSERT_TRUE((*fast)->infer(seven, a).ok());
  ASSERT_TRUE((*fast)->infer(last, b).ok());
  for (std::size_t o = 0; o < a.size(); ++o) {
    ASSERT_EQ(a[o].dim(0), 7);
    ASSERT_EQ(b[o].dim(0), 1);
    for (std::size_t i = 0; i < b[o].size(); ++i) ASSERT_NEAR(a[o].item(6)[i], b[o].data()[i], 1e-5f) << "output " << o;
  }
}

TEST(XnnpackBackendTest, AnInputOfTheWrongSizeIsAClearError) {
  const ShippedModel& m = shipped_models()[0];
  auto fast = create_xnnpack_backend({test::data_file(m.file), m.outputs, BackendKind::xnnpack});
  ASSERT_TRUE(fast.ok());
  Tensor wrong({1, 256, 256, 3});
  std::vector<Tensor> out;
  const Status s = (*fast)->infer(wrong, out);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(s.error().message.find("[1,256,256,3] does not fit the model's [?,128,128,3]"), std::string::npos)
      << s.error().message;
}

TEST(XnnpackBackendTest, AMissingFileOrNotAModelIsAClearError) {
  auto missing = create_xnnpack_backend({"/nonexistent/model.onnx", {}, BackendKind::xnnpack});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  test::TempDir dir;
  {
    std::FILE* f = std::fopen(dir.file("junk.onnx").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs("this is not a protobuf, just text pretending to be one", f);
    std::fclose(f);
  }
  for (const BackendKind kind : {BackendKind::xnnpack, BackendKind::automatic}) {
    auto junk = create_backend({dir.file("junk.onnx"), {}, kind});
    ASSERT_FALSE(junk.ok());
    EXPECT_EQ(junk.error().code, ErrorCode::invalid_argument) << junk.error().message;
  }
}

// oneDNN is the fastest on each of them where it has optimised kernels (BENCHMARKS.md),
// XNNPACK next. Where a layer would run on oneDNN's reference code (on CPUs without AVX-512
// this oneDNN has no channels-last depthwise kernel: BlazeFace ran 50x slower than on
// XNNPACK), automatic takes XNNPACK. The ctest variant with ONEDNN_MAX_CPU_ISA=AVX2 checks that
// path on any CPU.
TEST(XnnpackBackendTest, AutomaticPicksOnednnOnlyWhereItsKernelsAreOptimised) {
  const char* max_isa = std::getenv("ONEDNN_MAX_CPU_ISA");
  const bool avx2_only = max_isa != nullptr && std::string(max_isa) == "AVX2";
  for (const ShippedModel& m : shipped_models()) {
    BackendOptions strict{test::data_file(m.file), m.outputs, BackendKind::onednn};
    strict.refuse_reference_kernels = true;
    auto onednn = create_onednn_backend(strict);
    auto backend = create_backend({test::data_file(m.file), m.outputs, BackendKind::automatic});
    ASSERT_TRUE(backend.ok()) << backend.error().message;
    if (onednn.ok()) {
      EXPECT_EQ((*backend)->name(), "onednn") << m.file;
    } else {
      EXPECT_EQ(onednn.error().code, ErrorCode::invalid_argument);
      EXPECT_NE(onednn.error().message.find("no optimised kernel for this layer on this CPU (ref"), std::string::npos)
          << onednn.error().message;
      EXPECT_EQ((*backend)->name(), "xnnpack") << m.file;
    }
    if (avx2_only && m.file.find("blazeface") != std::string::npos) {
      EXPECT_FALSE(onednn.ok()) << m.file;
    }
  }
}

TEST(BackendKindTest, NamesRoundTripAndUnknownNamesAreErrors) {
  for (const BackendKind kind : {BackendKind::automatic, BackendKind::opencv, BackendKind::xnnpack, BackendKind::onednn}) {
    auto parsed = parse_backend_kind(to_string(kind));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, kind);
  }
  auto bad = parse_backend_kind("tensorrt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("unknown backend 'tensorrt'"), std::string::npos);
  ASSERT_TRUE(parse_precision("bf16").ok());
  EXPECT_EQ(*parse_precision(to_string(Precision::fp32)), Precision::fp32);
  EXPECT_FALSE(parse_precision("int4").ok());
}

// Only oneDNN runs bf16; asking another backend for it is an error, not a silent fp32.
TEST(BackendKindTest, Bf16OnABackendWithoutItIsAnError) {
  BackendOptions options{test::data_file(shipped_models()[0].file), shipped_models()[0].outputs, BackendKind::xnnpack};
  options.precision = Precision::bf16;
  auto backend = create_backend(options);
  ASSERT_FALSE(backend.ok());
  EXPECT_NE(backend.error().message.find("precision bf16 needs backend onednn"), std::string::npos) << backend.error().message;
}

}  // namespace
}  // namespace vigil
