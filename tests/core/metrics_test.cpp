#include "vigil/core/metrics.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace vigil {
namespace {

// The registry an engine with two cameras and one model would have (values fixed).
MetricsRegistry& example_registry() {
  static MetricsRegistry r;
  static bool made = false;
  if (made) return r;
  made = true;
  r.counter("vigil_frames_decoded_total", "Frames decoded by the camera's source.", {{"camera", "lobby"}})->add(120);
  r.counter("vigil_frames_decoded_total", "Frames decoded by the camera's source.", {{"camera", "door \"2\"\\x"}})->add(7);
  r.callback("vigil_camera_up", "1 while the camera delivers frames.\nLabels: camera.", MetricType::gauge,
             {{"camera", "lobby"}}, [] { return 1.0; });
  r.gauge("vigil_model_batch_fill", "Mean items per batch.", {{"model", "faces"}})->set(3.25);
  auto h = r.histogram("vigil_model_latency_seconds", "Model call per batch, seconds.", {{"model", "faces"}}, 0.01, 0.001);
  for (int i = 1; i <= 100; ++i) h->record(static_cast<double>(i) / 10.0);
  r.counter("vigil_frames_inferred_total", "Frames the detector ran on.", {{"camera", "lobby"}, {"model", "faces"}})->add(40);
  return r;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(MetricsTest, PrometheusTextMatchesTheGoldenFile) {
  const std::string golden_path = std::string(VIGIL_SOURCE_DIR) + "/tests/core/golden/metrics.prom";
  const std::string text = prometheus_text(example_registry().snapshot());
  if (std::getenv("VIGIL_UPDATE_GOLDEN")) std::ofstream(golden_path) << text;
  EXPECT_EQ(text, read_file(golden_path)) << "regenerate with VIGIL_UPDATE_GOLDEN=1 after checking the new text";
}

TEST(MetricsTest, SeriesOfOneNameAreGroupedUnderOneHeader) {
  const std::string text = prometheus_text(example_registry().snapshot());
  std::size_t headers = 0;
  for (std::size_t at = 0; (at = text.find("# TYPE vigil_frames_decoded_total", at)) != std::string::npos; ++at) ++headers;
  EXPECT_EQ(headers, 1u);
}

TEST(MetricsTest, TotalsSumTheMatchingSeries) {
  MetricsRegistry r;
  r.counter("frames", "", {{"camera", "a"}})->add(3);
  r.counter("frames", "", {{"camera", "b"}})->add(4);
  r.counter("other", "", {{"camera", "a"}})->add(100);
  EXPECT_EQ(r.total("frames"), 7);
  EXPECT_EQ(r.total("frames", {{"camera", "b"}}), 4);
  EXPECT_EQ(r.total("missing"), 0);
}

TEST(MetricsTest, RemoveMatchingDropsACamerasSeries) {
  MetricsRegistry r;
  auto a = r.counter("frames", "", {{"camera", "a"}});
  r.counter("frames", "", {{"camera", "b"}})->add(4);
  a->add(1);
  r.remove_matching("camera", "a");
  a->add(1);  // a writer still holding its handle is harmless
  const auto samples = r.snapshot();
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].labels[0].second, "b");
}

TEST(MetricsTest, HistogramsReportQuantilesCountAndExactSum) {
  MetricsRegistry r;
  auto h = r.histogram("lat", "");
  for (int i = 0; i < 10; ++i) h->record(2.0);
  const auto s = r.snapshot().at(0);
  EXPECT_EQ(s.count, 10u);
  EXPECT_DOUBLE_EQ(s.sum, 20.0);
  EXPECT_NEAR(s.p50, 2.0, 0.2);
}

}  // namespace
}  // namespace vigil
