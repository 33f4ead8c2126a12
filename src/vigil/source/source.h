// Source: where a camera's frames come from.
//
// A Source produces Frames in order, one read() at a time, on one thread (its reader). It
// owns its decoder and its FramePool. read() blocks until the next frame is ready: for a
// live source, until the camera delivers one (a synthetic live source paces itself to its
// frame rate); for a file, until the decoder has one.
//
// Outcomes of read():
//   a FrameRef          the next frame
//   an empty FrameRef   end of stream: a normal stop, not an error
//   an Error            unavailable / deadline_exceeded (stream dropped or stalled: the
//                       caller may reconnect), not_found / invalid_argument / data_loss
//                       (bad input: do not retry), cancelled (interrupt() was called)
// interrupt() may be called from any thread; it makes a blocked read() return soon.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "vigil/core/frame.h"
#include "vigil/core/status.h"
#include "vigil/source/source_config.h"

namespace vigil {

struct SourceInfo {
  int width = 0;
  int height = 0;
  double fps = 0;                // nominal; 0 when unknown
  bool live = false;             // frames arrive in real time (drop, don't queue)
  std::int64_t frame_count = -1;  // known length of a file, else -1
  std::string description;       // e.g. "ffmpeg h264 1280x720 yuv420p"
};

class Source {
 public:
  virtual ~Source() = default;
  virtual Result<FrameRef> read() = 0;
  virtual const SourceInfo& info() const = 0;
  virtual void interrupt() = 0;
};

// Opens the source a config describes. Fails with a message naming the problem (missing
// file, unreachable stream, not a video) within the configured open timeout.
Result<std::unique_ptr<Source>> open_source(const SourceConfig& config, const std::string& camera_id);

}  // namespace vigil
