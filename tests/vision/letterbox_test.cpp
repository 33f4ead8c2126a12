#include "vigil/vision/letterbox.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "vigil/vision/yuv.h"

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

// A video-range frame already at the model's width takes no resize, so every model pixel is
// the BT.601 conversion of its own luma and of the chroma sample at (x/2, y/2): the
// vectorised path (even size, video range) and the per-pixel path (full range) must both
// give it, within the rounding of 8-bit RGB.
TEST(LetterboxTest, EveryPixelIsTheBt601ConversionOfItsSamples) {
  for (const bool full_range : {false, true}) {
    for (const PixelFormat format : {PixelFormat::yuv420p, PixelFormat::nv12}) {
      const int w = 128, h = 64;
      ByteStorage storage;
      Image image = storage.allocate(format, w, h);
      image.full_range = full_range;
      auto* luma = const_cast<std::uint8_t*>(image.planes[0].data);
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) luma[y * image.planes[0].stride + x] = static_cast<std::uint8_t>(16 + (x * 7 + y * 3) % 220);
      }
      auto cb = [](int x, int y) { return static_cast<std::uint8_t>(40 + (x * 5 + y) % 180); };
      auto cr = [](int x, int y) { return static_cast<std::uint8_t>(30 + (x + y * 9) % 190); };
      for (int y = 0; y < h / 2; ++y) {
        for (int x = 0; x < w / 2; ++x) {
          if (format == PixelFormat::nv12) {
            auto* row = const_cast<std::uint8_t*>(image.planes[1].data) + y * image.planes[1].stride;
            row[2 * x] = cb(x, y);
            row[2 * x + 1] = cr(x, y);
          } else {
            const_cast<std::uint8_t*>(image.planes[1].data)[y * image.planes[1].stride + x] = cb(x, y);
            const_cast<std::uint8_t*>(image.planes[2].data)[y * image.planes[2].stride + x] = cr(x, y);
          }
        }
      }
      std::vector<float> out(w * w * 3);
      LetterboxScratch scratch;
      const LetterboxTransform t = letterbox_rgb(image, w, InputRange::zero_to_one, out.data(), scratch);
      ASSERT_FLOAT_EQ(t.scale, 1.0f);
      const YuvToRgb k = YuvToRgb::for_range(full_range);
      double worst = 0;
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
          const float l = k.cy * (static_cast<float>(luma[y * image.planes[0].stride + x]) - k.y_offset);
          const float u = static_cast<float>(cb(x / 2, y / 2)) - 128.0f;
          const float v = static_cast<float>(cr(x / 2, y / 2)) - 128.0f;
          const float rgb[3] = {l + k.cr_r * v, l + k.cb_g * u + k.cr_g * v, l + k.cb_b * u};
          for (int c = 0; c < 3; ++c) {
            const float expected = std::clamp(rgb[c], 0.0f, 255.0f) / 255.0f;
            const float got = out[((y + static_cast<int>(t.pad_y)) * w + x) * 3 + c];
            worst = std::max(worst, static_cast<double>(std::abs(got - expected)));
          }
        }
      }
      EXPECT_LE(worst, 1.5 / 255) << (full_range ? "full" : "video") << " range, "
                                   << (format == PixelFormat::nv12 ? "nv12" : "yuv420p");
    }
  }
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
