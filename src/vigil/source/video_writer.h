// VideoWriter: encodes YUV420P pictures into a video file with FFmpeg (H.264 through
// libx264 when FFmpeg has it, else MPEG-4 part 2), container from the file's extension.
// For tools and evaluation (rendered test scenes, fixtures), not for the live path.
//
//   auto writer = VideoWriter::open("scene.mp4", 960, 540, 25);
//   writer->write(image);   // every frame, in order
//   writer->close();        // flushes the encoder and writes the trailer
//
// Threading: one caller at a time.
#pragma once

#include <memory>
#include <string>

#include "vigil/core/frame.h"
#include "vigil/core/status.h"

namespace vigil {

struct VideoWriterConfig {
  std::string path;
  int width = 0;   // even
  int height = 0;  // even
  int fps = 25;
  int crf = 18;    // H.264 quality (lower: better); MPEG-4 uses a matching fixed quantiser
};

class VideoWriter {
 public:
  static Result<std::unique_ptr<VideoWriter>> open(const VideoWriterConfig& config);
  ~VideoWriter();  // closes if still open (errors then go unreported: call close())

  // One picture of the configured size, YUV420P.
  Status write(const Image& image);
  Status close();
  std::string codec_name() const;

 private:
  struct Impl;
  explicit VideoWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil
