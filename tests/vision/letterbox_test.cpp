#include "vigil/vision/letterbox.h"

#include <gtest/gtest.h>

#include <vector>

namespace vigil {
namespace {

TEST(LetterboxTest, WideFrameIsPaddedTopAndBottom) {
  const LetterboxTransform t = letterbox_transform(1280, 720, 256);
  EXPECT_FLOAT_EQ(t.scale, 0.2f);
  EXPECT_FLOAT_EQ(t.pad_x, 0.0f);
  EXPECT_FLOAT_EQ(t.pad_y, 56.0f);  // (256 - 144) / 2
  const Point2 p = t.to_frame(128, 128);
  EXPECT_NEAR(p.x, 640, 1e-3);
  EXPECT_NEAR(p.y, 360, 1e-3);
}

TEST(LetterboxTest, TallFrameIsPaddedLeftAndRight) {
  const LetterboxTransform t = letterbox_transform(100, 200, 128);
  EXPECT_FLOAT_EQ(t.pad_x, 32.0f);
  EXPECT_FLOAT_EQ(t.pad_y, 0.0f);
}

// A frame of one colour, as YUV420P (video range) and as BGR: both give the same RGB
// inside the picture and black padding outside.
TEST(LetterboxTest, YuvAndBgrGiveTheSameColour) {
  const int w = 320, h = 160, size = 128;
  ByteStorage yuv_storage, bgr_storage;
  Image yuv = yuv_storage.allocate(PixelFormat::yuv420p, w, h);
  Image bgr = bgr_storage.allocate(PixelFormat::bgr24, w, h);
  // Orange: R=230 G=120 B=40 -> BT.601 video range Y=139 U=77 V=182 (rounded).
  for (int p = 0; p < 3; ++p) {
    const std::uint8_t value = p == 0 ? 139 : p == 1 ? 77 : 182;
    for (int y = 0; y < yuv.plane_height(p); ++y) {
      std::fill_n(const_cast<std::uint8_t*>(yuv.planes[p].data) + y * yuv.planes[p].stride, yuv.plane_width(p), value);
    }
  }
  for (int y = 0; y < h; ++y) {
    auto* row = const_cast<std::uint8_t*>(bgr.planes[0].data) + y * bgr.planes[0].stride;
    for (int x = 0; x < w; ++x) {
      row[3 * x] = 40;
      row[3 * x + 1] = 120;
      row[3 * x + 2] = 230;
    }
  }
  std::vector<float> a(size * size * 3), b(size * size * 3);
  LetterboxScratch scratch;
  letterbox_rgb(yuv, size, InputRange::minus_one_to_one, a.data(), scratch);
  const LetterboxTransform t = letterbox_rgb(bgr, size, InputRange::minus_one_to_one, b.data(), scratch);
  const int centre = (64 * size + 64) * 3;
  EXPECT_NEAR(b[centre + 0], 230 / 127.5 - 1, 1e-4);
  EXPECT_NEAR(b[centre + 2], 40 / 127.5 - 1, 1e-4);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(a[centre + c], b[centre + c], 3.0 / 127.5) << "channel " << c;
  // Top-left pixel is padding (the picture starts at row pad_y = 32).
  ASSERT_GT(t.pad_y, 0);
  EXPECT_FLOAT_EQ(a[0], -1.0f);
  EXPECT_FLOAT_EQ(b[0], -1.0f);
}

TEST(LetterboxTest, ZeroToOneRange) {
  ByteStorage storage;
  Image bgr = storage.allocate(PixelFormat::bgr24, 8, 8);
  for (int y = 0; y < 8; ++y) std::fill_n(const_cast<std::uint8_t*>(bgr.planes[0].data) + y * bgr.planes[0].stride, 24, 255);
  std::vector<float> out(16 * 16 * 3);
  LetterboxScratch scratch;
  letterbox_rgb(bgr, 16, InputRange::zero_to_one, out.data(), scratch);
  EXPECT_FLOAT_EQ(out[(8 * 16 + 8) * 3], 1.0f);
}

}  // namespace
}  // namespace vigil
