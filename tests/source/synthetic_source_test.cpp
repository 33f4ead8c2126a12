#include "vigil/source/synthetic_source.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "support/test_support.h"

namespace vigil {
namespace {

using Clock = std::chrono::steady_clock;

SourceConfig procedural(double fps, bool live) {
  SourceConfig config;
  config.type = SourceType::synthetic;
  config.pattern = SyntheticPattern::procedural;
  config.width = 320;
  config.height = 240;
  config.fps = fps;
  config.live = live;
  return config;
}

// A synthetic source over `path`, not paced (frames as fast as they are read).
SourceConfig unpaced(SyntheticPattern pattern, const std::string& path, int width, int height) {
  SourceConfig config;
  config.type = SourceType::synthetic;
  config.pattern = pattern;
  config.path = path;
  config.width = width;
  config.height = height;
  config.live = false;
  return config;
}

TEST(SyntheticSourceTest, ProceduralFramesHaveConfiguredSizeAndTimeline) {
  auto source = SyntheticSource::open(procedural(20, false), "synth");
  ASSERT_TRUE(source.ok()) << source.error().message;
  for (int i = 0; i < 10; ++i) {
    auto frame = (*source)->read();
    ASSERT_TRUE(frame.ok() && *frame);
    EXPECT_EQ((*frame)->seq, static_cast<std::uint64_t>(i));
    EXPECT_EQ((*frame)->pts_ms, i * 50);
    EXPECT_EQ((*frame)->image.width, 320);
    EXPECT_EQ((*frame)->image.height, 240);
    EXPECT_EQ((*frame)->image.format, PixelFormat::yuv420p);
  }
}

TEST(SyntheticSourceTest, ProceduralPictureMoves) {
  auto source = SyntheticSource::open(procedural(20, false), "synth");
  ASSERT_TRUE(source.ok());
  auto a = (*source)->read();
  auto b = (*source)->read();
  ASSERT_TRUE(a.ok() && b.ok());
  const Image& x = (*a)->image;
  const Image& y = (*b)->image;
  int differing_rows = 0;
  for (int row = 0; row < x.height; ++row) {
    differing_rows += std::memcmp(x.planes[0].data + row * x.planes[0].stride, y.planes[0].data + row * y.planes[0].stride,
                                  static_cast<std::size_t>(x.width)) != 0;
  }
  EXPECT_GT(differing_rows, x.height / 2);
}

TEST(SyntheticSourceTest, LivePacingIsNeverEarly) {
  auto source = SyntheticSource::open(procedural(50, true), "synth");
  ASSERT_TRUE(source.ok());
  const auto start = Clock::now();
  for (int i = 0; i < 11; ++i) ASSERT_TRUE((*source)->read().ok());
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(195));  // 10 intervals of 20 ms
  EXPECT_LT(elapsed, std::chrono::milliseconds(2000));
}

TEST(SyntheticSourceTest, LateReaderGetsTheCurrentFrameAndSkipsAreCounted) {
  auto source = SyntheticSource::open(procedural(100, true), "synth");
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->read().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a slow consumer
  auto frame = (*source)->read();
  ASSERT_TRUE(frame.ok() && *frame);
  EXPECT_GE((*frame)->seq, 9u);
  EXPECT_EQ((*source)->skipped(), (*frame)->seq - 1);
}

TEST(SyntheticSourceTest, InterruptEndsABlockedRead) {
  auto source = SyntheticSource::open(procedural(0.2, true), "synth");  // a frame every 5 s
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->read().ok());
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    (*source)->interrupt();
  });
  const auto start = Clock::now();
  auto frame = (*source)->read();
  stopper.join();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  ASSERT_FALSE(frame.ok());
  EXPECT_EQ(frame.error().code, ErrorCode::cancelled);
}

TEST(PanGeometryTest, WindowStaysInsideThePictureWithEvenCornersAndOutputAspect) {
  const PanGeometry pan(1920, 1280, 1280, 720, 1.2, 2.0, 100);
  for (std::uint64_t seq = 0; seq < 300; ++seq) {
    const PixelRect w = pan.window_at(seq);
    EXPECT_GE(w.x, 0);
    EXPECT_GE(w.y, 0);
    EXPECT_LE(w.x + w.width, 1920);
    EXPECT_LE(w.y + w.height, 1280);
    EXPECT_EQ(w.x % 2, 0);
    EXPECT_EQ(w.y % 2, 0);
    EXPECT_NEAR(static_cast<double>(w.width) / w.height, 1280.0 / 720.0, 0.01);
  }
}

TEST(PanGeometryTest, SweepsAcrossAndZoomsOncePerPeriod) {
  const PanGeometry pan(1920, 1280, 1280, 720, 1.2, 2.0, 100);
  const PixelRect start = pan.window_at(0);
  const PixelRect middle = pan.window_at(50);
  const PixelRect end = pan.window_at(100);
  EXPECT_EQ(start.x, 0);                        // left edge at the start
  EXPECT_EQ(middle.x + middle.width, 1920);     // right edge half way
  EXPECT_EQ(start.width, 1600);                 // 1920 / 1.2
  EXPECT_EQ(middle.width, 960);                 // 1920 / 2.0
  EXPECT_EQ(end.x, start.x);                    // periodic
  EXPECT_EQ(end.width, start.width);
}

TEST(SyntheticSourceTest, ImagePanOutputMatchesWindowOfPicture) {
  SourceConfig config = unpaced(SyntheticPattern::image, test::data_file("media/sample1.jpg"), 640, 360);
  auto source = SyntheticSource::open(config, "pan");
  ASSERT_TRUE(source.ok()) << source.error().message;
  ASSERT_NE((*source)->pan(), nullptr);
  auto frame = (*source)->read();
  ASSERT_TRUE(frame.ok() && *frame);
  EXPECT_EQ((*frame)->image.width, 640);
  EXPECT_EQ((*source)->pan()->window_at(0).x, 0);
}

// Sixteen cameras over six photos keep six decoded pictures: sources of one file share its
// picture (and render the same frames); a file changed on disk is decoded again.
TEST(SyntheticSourceTest, SourcesOfOneFileShareItsDecodedPicture) {
  test::TempDir dir;
  const std::string photo = dir.file("photo.jpg");
  std::filesystem::copy_file(test::data_file("media/sample1.jpg"), photo);
  SourceConfig config = unpaced(SyntheticPattern::image, photo, 320, 180);
  auto a = SyntheticSource::open(config, "a");
  auto b = SyntheticSource::open(config, "b");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_NE((*a)->picture(), nullptr);
  EXPECT_EQ((*a)->picture(), (*b)->picture()) << "one decoded copy";
  for (std::uint64_t k : {0, 7}) {
    auto fa = (*a)->render(k), fb = (*b)->render(k);
    ASSERT_TRUE(fa.ok() && fb.ok());
    const Image& ia = (*fa)->image;
    const Image& ib = (*fb)->image;
    for (int y = 0; y < ia.height; ++y) {
      ASSERT_TRUE(std::equal(ia.planes[0].data + y * ia.planes[0].stride, ia.planes[0].data + y * ia.planes[0].stride + ia.width,
                             ib.planes[0].data + y * ib.planes[0].stride))
          << "frame " << k << " row " << y;
    }
  }
  config.path = test::data_file("media/sample2.jpg");
  auto other = SyntheticSource::open(config, "other");
  ASSERT_TRUE(other.ok());
  EXPECT_NE((*other)->picture(), (*a)->picture());
  const int first_width = (*a)->picture()->width;
  std::filesystem::copy_file(test::data_file("media/sample2.jpg"), photo, std::filesystem::copy_options::overwrite_existing);
  config.path = photo;
  auto changed = SyntheticSource::open(config, "changed");
  ASSERT_TRUE(changed.ok());
  EXPECT_NE((*changed)->picture(), (*a)->picture()) << "the file changed: decoded again";
  EXPECT_EQ((*changed)->picture()->width, (*other)->picture()->width);
  EXPECT_EQ((*a)->picture()->width, first_width) << "the first sources keep theirs";
}

TEST(SyntheticSourceTest, MissingImageIsAClearError) {
  SourceConfig config;
  config.type = SourceType::synthetic;
  config.pattern = SyntheticPattern::image;
  config.path = "/nonexistent/photo.jpg";
  auto source = SyntheticSource::open(config, "pan");
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(source.error().message.find("/nonexistent/photo.jpg"), std::string::npos);
}

TEST(SyntheticSourceTest, VideoPatternLoopsTheFileAtTheConfiguredSize) {
  test::TempDir dir;
  const std::string path = dir.file("loop.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 10, 320, 240));
  SourceConfig config = unpaced(SyntheticPattern::video, path, 160, 120);
  auto source = SyntheticSource::open(config, "loop");
  ASSERT_TRUE(source.ok()) << source.error().message;
  for (int i = 0; i < 25; ++i) {
    auto frame = (*source)->read();
    ASSERT_TRUE(frame.ok() && *frame) << "frame " << i;
    EXPECT_EQ((*frame)->image.width, 160);
  }
}

}  // namespace
}  // namespace vigil
