#include "vigil/core/frame.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(ByteStorageTest, Yuv420pPlanesDoNotOverlap) {
  ByteStorage storage;
  Image image = storage.allocate(PixelFormat::yuv420p, 101, 51);
  ASSERT_EQ(image.plane_count(), 3);
  EXPECT_EQ(image.plane_width(1), 51);
  EXPECT_EQ(image.plane_height(1), 26);
  EXPECT_GE(image.planes[0].stride, 101);
  EXPECT_EQ(image.planes[0].stride % 32, 0);
  EXPECT_GE(image.planes[1].data, image.planes[0].data + image.planes[0].stride * 51);
  EXPECT_GE(image.planes[2].data, image.planes[1].data + image.planes[1].stride * 26);
}

TEST(ByteStorageTest, SameSizeReusesMemory) {
  ByteStorage storage;
  Image a = storage.allocate(PixelFormat::nv12, 640, 480);
  Image b = storage.allocate(PixelFormat::nv12, 640, 480);
  EXPECT_EQ(a.planes[0].data, b.planes[0].data);
  EXPECT_EQ(b.plane_count(), 2);
  EXPECT_GE(b.planes[1].stride, 640);
}

TEST(ImageTest, Bgr24HasOnePlane) {
  ByteStorage storage;
  Image image = storage.allocate(PixelFormat::bgr24, 10, 10);
  EXPECT_EQ(image.plane_count(), 1);
  EXPECT_GE(image.planes[0].stride, 30);
  EXPECT_FALSE(image.empty());
  EXPECT_TRUE(Image{}.empty());
}

}  // namespace
}  // namespace vigil
