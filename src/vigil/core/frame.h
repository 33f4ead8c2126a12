// Frame and Image: one decoded picture and where it came from.
//
// An Image describes pixel planes it does not own; the Frame that carries it owns the
// memory through its FrameStorage (the decoder's own reference-counted buffers for FFmpeg
// sources, a recycled byte buffer for synthetic ones). Frames come from a FramePool and are
// handed around as FrameRef; a Frame is never written after its source publishes it.
//
// Pixel formats stay what the decoder produced (YUV420P or NV12): there is no full-frame
// colour conversion; consumers (pre-processing, JPEG encoding) read the planes directly.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vigil/core/pool.h"

namespace vigil {

enum class PixelFormat : std::uint8_t {
  yuv420p,  // planar Y, U, V; chroma halved in both directions
  nv12,     // planar Y, interleaved UV; chroma halved in both directions
  bgr24,    // packed B, G, R
};

const char* to_string(PixelFormat format);

struct Plane {
  const std::uint8_t* data = nullptr;
  int stride = 0;  // bytes per row
};

struct Image {
  PixelFormat format = PixelFormat::yuv420p;
  int width = 0;
  int height = 0;
  bool full_range = false;  // YUV: JPEG range (0-255) rather than video range (16-235)
  std::array<Plane, 3> planes{};

  int plane_count() const;
  // Width and height in samples (for nv12's UV plane: in UV pairs).
  int plane_width(int plane) const;
  int plane_height(int plane) const;
  bool empty() const { return width <= 0 || height <= 0 || planes[0].data == nullptr; }
};

// FrameStorage: owns the memory behind a Frame's planes. release() runs when the frame goes
// back to its pool: drop references to external buffers, keep reusable memory.
class FrameStorage {
 public:
  virtual ~FrameStorage() = default;
  virtual void release() {}
};

// ByteStorage: a byte buffer that keeps its capacity across reuse.
class ByteStorage final : public FrameStorage {
 public:
  // Lays out an image of the given format and size in this buffer (rows aligned to 32 bytes)
  // and returns it with writable planes. Allocates only when the buffer must grow.
  Image allocate(PixelFormat format, int width, int height);
  std::uint8_t* data() { return bytes_.data(); }

 private:
  std::vector<std::uint8_t> bytes_;
};

using SystemTime = std::chrono::system_clock::time_point;
using SteadyTime = std::chrono::steady_clock::time_point;

struct Frame {
  std::shared_ptr<const std::string> camera;  // the camera's id, shared by all its frames
  std::uint64_t seq = 0;                      // 0, 1, 2, ... per source
  std::int64_t pts_ms = 0;                    // presentation time in the stream
  SystemTime captured_at{};                   // wall clock when the frame was produced
  SteadyTime captured_steady{};               // same instant, monotonic (for ages)
  Image image;
  std::unique_ptr<FrameStorage> storage;

  // Writable pointer to a plane of an image laid out by ByteStorage (producer only).
  std::uint8_t* mutable_plane(int plane) const { return const_cast<std::uint8_t*>(image.planes[plane].data); }
};

using FramePool = Pool<Frame>;
using FrameRef = Ref<Frame>;

// A pool whose frames release their storage when they come back.
std::unique_ptr<FramePool> make_frame_pool(std::size_t max_frames = FramePool::kUnbounded);

}  // namespace vigil
