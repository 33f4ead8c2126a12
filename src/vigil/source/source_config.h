// SourceConfig: typed settings of one camera's source, filled from YAML by the cli module.
#pragma once

#include <string>

namespace vigil {

enum class SourceType { file, stream, synthetic };
enum class SyntheticPattern { procedural, image, video };

struct SourceConfig {
  SourceType type = SourceType::file;

  // file / stream (and synthetic video's file)
  std::string url;               // path, rtsp://, http(s)://
  int decoder_threads = 1;       // FFmpeg decoder threads for this stream
  bool loop = false;             // file: start again at the end
  bool realtime = false;         // file: deliver at the file's frame rate instead of at once
  int open_timeout_ms = 5000;    // connect + probe deadline
  int read_timeout_ms = 5000;    // no packet for this long: the stream is stalled
  std::string rtsp_transport = "tcp";

  // synthetic
  SyntheticPattern pattern = SyntheticPattern::procedural;
  std::string path;              // image or video for the image / video patterns
  int width = 1280;
  int height = 720;
  double fps = 15.0;
  bool live = true;              // live pacing; false: as fast as the reader asks
  double zoom_min = 1.5;         // image pan: window = largest fitting window / zoom
  double zoom_max = 1.5;
  double pan_period_s = 10.0;    // image pan: seconds for one sweep across and back
};

}  // namespace vigil
