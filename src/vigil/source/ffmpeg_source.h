// FfmpegSource: decodes a file or a network stream (rtsp://, http://) with libavformat and
// libavcodec.
//
// Frames stay in the decoder's pixel format: YUV420P (also JPEG-range YUVJ420P) and NV12
// are passed through without a copy (the Frame holds a reference to the decoder's buffer);
// any other format is converted once to YUV420P with libswscale into a pooled buffer.
//
// Every blocking FFmpeg call runs under a deadline enforced by the interrupt callback:
// opening and probing get open_timeout_ms, each packet read gets read_timeout_ms, so a dead
// or silent stream is reported as deadline_exceeded / unavailable, never a hang.
//
// Threading: one reader thread calls read(); interrupt() from any thread.
// Example config:
//   source: {type: file, url: /data/lobby.mp4, decoder_threads: 2, loop: true}
#pragma once

#include <memory>

#include "vigil/source/source.h"

namespace vigil {

class FfmpegSource final : public Source {
 public:
  static Result<std::unique_ptr<FfmpegSource>> open(const SourceConfig& config, const std::string& camera_id);
  ~FfmpegSource() override;

  Result<FrameRef> read() override;
  const SourceInfo& info() const override;
  void interrupt() override;

  // Frames whose packets the decoder rejected (corrupt data), skipped so far.
  std::int64_t corrupt_packets() const;

 private:
  struct Impl;
  explicit FfmpegSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil
