// SourceConfig: typed settings of one camera's source, filled from YAML by the cli module.
#pragma once

#include <string>
#include <vector>

namespace vigil {

enum class SourceType { file, stream, synthetic };
enum class SyntheticPattern { procedural, image, video };
enum class FaultKind { stall, disconnect, corrupt };

// Faults a synthetic camera injects on a schedule, so every recovery path can be tested
// without a network: the k-th fault (k = 0, 1, ...) starts at every_s * (k + 1) seconds and
// is kinds[k % kinds.size()]. Jitter moves every frame's due time by up to +-jitter_ms.
struct FaultConfig {
  double every_s = 0;  // 0: no scheduled faults
  std::vector<FaultKind> kinds{FaultKind::stall, FaultKind::disconnect, FaultKind::corrupt};
  double stall_s = 2;       // no frames, connection kept
  double disconnect_s = 1;  // connection lost, then reconnected
  double jitter_ms = 0;
};

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
  // file: pass on every N-th decoded frame (frames 0, N, 2N, ...); the others are decoded
  // and counted, never queued. The tracker counts the frames passed on, so its settings hold
  // in sampled frames (what `vigil harvest --stride` means).
  int stride = 1;

  // synthetic
  SyntheticPattern pattern = SyntheticPattern::procedural;
  std::string path;              // image or video for the image / video patterns
  int width = 1280;
  int height = 720;
  double fps = 15.0;
  // Live: frames arrive in real time; the engine keeps only the newest (CameraSlot). Not
  // live: the engine queues every frame (bounded, blocking) and drops none. Defaults by
  // kind: streams and paced synthetic cameras are live, files are not (unless realtime).
  // For synthetic cameras it also means paced at fps (false: as fast as read).
  bool live = true;
  bool reconnect = true;              // stream: reconnect with backoff (also at start-up)
  int reconnect_initial_ms = 250;     // first retry delay, doubled per failure
  int reconnect_max_ms = 10000;       // cap of the retry delay
  FaultConfig faults;                 // synthetic only
  double zoom_min = 1.5;         // image pan: window = largest fitting window / zoom
  double zoom_max = 1.5;
  double pan_period_s = 10.0;    // image pan: seconds for one sweep across and back
};

}  // namespace vigil
