#include "vigil/harvest/progress.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace vigil {
namespace {

// 100 frames/s for 10 s, then 50 frames/s: the rate and ETA follow the last 5 s, and CPU is
// CPU seconds over wall seconds in the same window.
TEST(ProgressTest, RatesFollowTheRecentWindow) {
  ProgressMeter meter(5);
  HarvestProgress p;
  p.frames_total = 3000;
  double cpu = 0;
  for (int t = 0; t <= 20; ++t) {
    p.frames_done = t <= 10 ? static_cast<std::uint64_t>(100 * t) : static_cast<std::uint64_t>(1000 + 50 * (t - 10));
    cpu += t <= 10 ? 1.9 : 0.9;
    meter.update(p, t, cpu);
    if (t == 8) {
      EXPECT_NEAR(p.fps, 100, 1e-9);
      EXPECT_NEAR(p.cpu_percent, 190, 1e-6);
      EXPECT_NEAR(p.eta_s, (3000 - 800) / 100.0, 1e-9);
    }
  }
  EXPECT_NEAR(p.fps, 50, 1e-9) << "the last 5 s, not the whole run (which averages 75)";
  EXPECT_NEAR(p.cpu_percent, 90, 1e-6);
  EXPECT_NEAR(p.eta_s, (3000 - 1500) / 50.0, 1e-9);
  EXPECT_EQ(p.elapsed_s, 20);
  p.frames_done = 3000;
  meter.update(p, 21, cpu + 1);
  EXPECT_EQ(p.eta_s, 0);
  p.frames_total = 0;  // unknown length: no ETA
  meter.update(p, 22, cpu + 2);
  EXPECT_LT(p.eta_s, 0);
}

TEST(ProgressTest, JsonHasEveryFieldAndNullForAnUnknownEta) {
  HarvestProgress p;
  p.phase = "scan";
  p.frames_done = 9876;
  p.frames_total = 24061;
  p.faces = 312;
  p.tracks = 28;
  p.embedder_calls = 21;
  p.fps = 85.24;
  p.eta_s = 167.04;
  p.cpu_percent = 196.2;
  p.threads = 7;
  p.rss_mb = 180.44;
  const nlohmann::json j = nlohmann::json::parse(progress_json(p));
  for (const char* key : {"phase", "frames_done", "frames_total", "faces", "tracks", "embedder_calls", "elapsed_s", "fps", "eta_s",
                          "cpu_percent", "threads", "rss_mb"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["frames_done"], 9876);
  EXPECT_DOUBLE_EQ(j["fps"].get<double>(), 85.2);
  EXPECT_DOUBLE_EQ(j["eta_s"].get<double>(), 167.0);
  p.eta_s = -1;
  EXPECT_TRUE(nlohmann::json::parse(progress_json(p))["eta_s"].is_null());
}

TEST(ProgressTest, TheBarAndTheLineSayWhereItIs) {
  HarvestProgress p;
  p.phase = "scan";
  p.frames_done = 9876;
  p.frames_total = 24061;
  p.faces = 312;
  p.tracks = 28;
  p.fps = 85.2;
  p.eta_s = 167;
  p.cpu_percent = 196;
  const std::string bar = progress_bar(p, 200);
  EXPECT_EQ(bar, "scan [########............] 41% 9876/24061 frames | 312 faces 28 tracks | 85.2 fps | ETA 2:47 | CPU 196%");
  EXPECT_EQ(progress_bar(p, 40).size(), 40u) << "never wider than the terminal";
  EXPECT_EQ(progress_line(p), "harvest: scan 9876/24061 frames (41%), 312 faces 28 tracks | 85.2 fps | ETA 2:47 | CPU 196%");
  p.frames_total = 0;
  p.eta_s = -1;
  EXPECT_EQ(progress_line(p), "harvest: scan 9876 frames, 312 faces 28 tracks | 85.2 fps | ETA ? | CPU 196%");
}

TEST(ProgressTest, Durations) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(167.4), "2:47");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  EXPECT_EQ(format_duration(-1), "?");
}

}  // namespace
}  // namespace vigil
