#include "vigil/track/shot_cut.h"

#include <gtest/gtest.h>

#include <vector>

namespace vigil {
namespace {

// A grey image with a bright square at (x, y).
struct TestImage {
  std::vector<std::uint8_t> pixels;
  Image image;
  TestImage(int grey, int x, int y, PixelFormat format = PixelFormat::yuv420p) {
    const int w = 320, h = 180, channels = format == PixelFormat::bgr24 ? 3 : 1;
    pixels.assign(static_cast<std::size_t>(w * h * channels), static_cast<std::uint8_t>(grey));
    for (int r = y; r < y + 40; ++r) {
      for (int c = x * channels; c < (x + 40) * channels; ++c) pixels[static_cast<std::size_t>(r * w * channels + c)] = 250;
    }
    image.format = format;
    image.width = w;
    image.height = h;
    image.planes[0] = {pixels.data(), w * channels};
  }
};

TEST(ShotCutDetectorTest, MovementIsNotACutAndANewSceneIs) {
  ShotCutDetector shots;
  EXPECT_FALSE(shots.cut(TestImage(60, 10, 10).image)) << "the first frame";
  for (int x = 12; x < 60; x += 2) EXPECT_FALSE(shots.cut(TestImage(60, x, 10).image)) << "the square moves";
  EXPECT_LT(shots.last_difference(), 2.0);
  EXPECT_TRUE(shots.cut(TestImage(140, 200, 100).image)) << "another scene";
  EXPECT_GT(shots.last_difference(), 60.0);
  EXPECT_FALSE(shots.cut(TestImage(140, 202, 100).image));
  shots.reset();
  EXPECT_FALSE(shots.cut(TestImage(20, 0, 0).image)) << "after reset, a first frame again";
}

TEST(ShotCutDetectorTest, BgrImagesAreMeasuredByTheirLuma) {
  ShotCutDetector shots;
  EXPECT_FALSE(shots.cut(TestImage(60, 10, 10, PixelFormat::bgr24).image));
  EXPECT_FALSE(shots.cut(TestImage(62, 12, 10, PixelFormat::bgr24).image));
  EXPECT_TRUE(shots.cut(TestImage(180, 10, 10, PixelFormat::bgr24).image));
}

}  // namespace
}  // namespace vigil
