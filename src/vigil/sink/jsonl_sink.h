// JsonlSink: one JSON object per processed frame, one line each, appended to a file.
//
//   {"camera":"lobby","seq":812,"pts_ms":27066,"captured_at":"2026-11-23T07:02:28.123Z",
//    "model":"faces","detections":[{"bbox":[x1,y1,x2,y2],"score":0.93,
//    "keypoints":[[x,y],...]}]}
//
// Boxes are in source-frame pixels. Each line goes to the file in one write(2) with
// O_APPEND, so a crash loses at most the line being written; when the sink opens a file
// whose last line is torn (an earlier crash), it cuts that partial line off before
// appending. The line buffer is reused: no allocation per frame in steady state.
//
// Threading: write() from any number of threads at once (each line is one write(2));
// open, flush and close from one thread.
// Example config:   sinks: [{type: jsonl, path: out/detections.jsonl, fsync: false}]
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "vigil/sink/sink.h"

namespace vigil {

struct JsonlSinkConfig {
  std::string path;
  bool fsync = false;  // fsync on flush() (and close), not per line
};

class JsonlSink final : public Sink {
 public:
  static Result<std::unique_ptr<JsonlSink>> open(const JsonlSinkConfig& config);
  ~JsonlSink() override;

  Status write(const FrameResult& result) override;
  Status flush() override;
  Status close() override;

  // Bytes of a torn last line removed when the file was opened (0 if none).
  std::size_t repaired_bytes() const { return repaired_bytes_; }
  std::uint64_t lines_written() const { return lines_.load(std::memory_order_relaxed); }

 private:
  JsonlSink(JsonlSinkConfig config, int fd, std::size_t repaired);
  JsonlSinkConfig config_;
  int fd_ = -1;
  std::size_t repaired_bytes_ = 0;
  std::atomic<std::uint64_t> lines_{0};
};

// Appends s to out as a JSON string literal (quotes, escapes, control characters).
void append_json_string(std::string& out, std::string_view s);

}  // namespace vigil
