#include "vigil/core/frame.h"

namespace vigil {

const char* to_string(PixelFormat format) {
  switch (format) {
    case PixelFormat::yuv420p: return "yuv420p";
    case PixelFormat::nv12: return "nv12";
    case PixelFormat::bgr24: return "bgr24";
  }
  return "unknown";
}

int Image::plane_count() const {
  switch (format) {
    case PixelFormat::yuv420p: return 3;
    case PixelFormat::nv12: return 2;
    case PixelFormat::bgr24: return 1;
  }
  return 0;
}

int Image::plane_width(int plane) const {
  if (plane == 0) return width;
  return (width + 1) / 2;
}

int Image::plane_height(int plane) const {
  if (plane == 0) return height;
  return (height + 1) / 2;
}

namespace {
int align32(int n) { return (n + 31) & ~31; }
}  // namespace

Image ByteStorage::allocate(PixelFormat format, int width, int height) {
  Image image;
  image.format = format;
  image.width = width;
  image.height = height;
  std::array<int, 3> row_bytes{};
  switch (format) {
    case PixelFormat::yuv420p:
      row_bytes = {width, (width + 1) / 2, (width + 1) / 2};
      break;
    case PixelFormat::nv12:
      row_bytes = {width, 2 * ((width + 1) / 2), 0};
      break;
    case PixelFormat::bgr24:
      row_bytes = {3 * width, 0, 0};
      break;
  }
  std::array<std::size_t, 3> offsets{};
  std::size_t total = 0;
  for (int p = 0; p < image.plane_count(); ++p) {
    offsets[p] = total;
    image.planes[p].stride = align32(row_bytes[p]);
    total += static_cast<std::size_t>(image.planes[p].stride) * image.plane_height(p);
  }
  if (bytes_.size() < total) bytes_.resize(total);
  for (int p = 0; p < image.plane_count(); ++p) image.planes[p].data = bytes_.data() + offsets[p];
  return image;
}

std::unique_ptr<FramePool> make_frame_pool(std::size_t max_frames) {
  return std::make_unique<FramePool>(max_frames, [](Frame& frame) {
    if (frame.storage) frame.storage->release();
    frame.image = Image{};
    frame.camera.reset();
  });
}

}  // namespace vigil
