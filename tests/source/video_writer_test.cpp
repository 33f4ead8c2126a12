#include "vigil/source/video_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "support/test_support.h"
#include "vigil/source/ffmpeg_source.h"

namespace vigil {
namespace {

// A YUV420P picture whose luma is a gradient shifted by `k`, chroma flat.
struct Picture {
  std::vector<std::uint8_t> bytes;
  Image image;
  Picture(int width, int height, int k) : bytes(static_cast<std::size_t>(width * height * 3 / 2)) {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) bytes[static_cast<std::size_t>(y * width + x)] = static_cast<std::uint8_t>(16 + (x + y + k) % 200);
    }
    std::fill(bytes.begin() + width * height, bytes.end(), 128);
    image.width = width;
    image.height = height;
    image.planes[0] = {bytes.data(), width};
    image.planes[1] = {bytes.data() + width * height, width / 2};
    image.planes[2] = {bytes.data() + width * height * 5 / 4, width / 2};
  }
};

TEST(VideoWriterTest, WritesEveryFrameAndTheDecoderReadsThemBack) {
  test::TempDir dir;
  const std::string path = dir.file("out.mp4");
  {
    auto writer = VideoWriter::open({path, 160, 96, 25, 10});
    ASSERT_TRUE(writer.ok()) << writer.error().message;
    for (int k = 0; k < 30; ++k) ASSERT_TRUE((*writer)->write(Picture(160, 96, 3 * k).image).ok());
    ASSERT_TRUE((*writer)->close().ok());
  }
  SourceConfig config;
  config.type = SourceType::file;
  config.url = path;
  auto source = FfmpegSource::open(config, "cam");
  ASSERT_TRUE(source.ok()) << source.error().message;
  int frames = 0;
  double worst = 0;
  for (;;) {
    auto frame = (*source)->read();
    ASSERT_TRUE(frame.ok()) << frame.error().message;
    if (!*frame) break;
    const Picture expected(160, 96, 3 * frames);
    const Image& got = (*frame)->image;
    ASSERT_EQ(got.width, 160);
    double diff = 0;
    for (int y = 0; y < 96; ++y) {
      for (int x = 0; x < 160; ++x) diff += std::abs(got.planes[0].data[y * got.planes[0].stride + x] - expected.bytes[static_cast<std::size_t>(y * 160 + x)]);
    }
    worst = std::max(worst, diff / (160 * 96));
    ++frames;
  }
  EXPECT_EQ(frames, 30);
  EXPECT_LT(worst, 4.0);  // mean absolute luma error of a lossy codec at high quality
}

TEST(VideoWriterTest, RejectsBadSizesWrongPicturesAndUnwritablePaths) {
  test::TempDir dir;
  EXPECT_EQ(VideoWriter::open({dir.file("odd.mp4"), 161, 96, 25, 18}).error().code, ErrorCode::invalid_argument);
  EXPECT_FALSE(VideoWriter::open({dir.file("no/such/dir/x.mp4"), 160, 96, 25, 18}).ok());
  EXPECT_FALSE(VideoWriter::open({dir.file("x.not_a_container"), 160, 96, 25, 18}).ok());
  auto writer = VideoWriter::open({dir.file("ok.mkv"), 160, 96, 25, 18});
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  EXPECT_EQ((*writer)->write(Picture(80, 48, 0).image).error().code, ErrorCode::invalid_argument);
  EXPECT_TRUE((*writer)->close().ok());
  EXPECT_FALSE((*writer)->write(Picture(160, 96, 0).image).ok());
}

}  // namespace
}  // namespace vigil
