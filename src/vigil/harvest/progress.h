// Progress of a harvest that a person can watch: a bar on a terminal, a plain line every few
// seconds in a log, and progress.json (rewritten atomically every second) for programs.
//
// ProgressMeter turns raw counts and clocks into rates: fps over the last few seconds (not
// since the start, so a slow start does not skew the ETA), the ETA from it, and CPU percent
// from getrusage over the same window.
//
// Threading: one thread (the harvest's reporter).
#pragma once

#include <cstdint>
#include <deque>
#include <string>

namespace vigil {

struct HarvestProgress {
  std::string phase;              // scan, embed, cluster, write, upload, done
  std::uint64_t frames_done = 0;
  std::uint64_t frames_total = 0;  // 0: unknown (a stream without a duration)
  std::uint64_t faces = 0;
  std::uint64_t tracks = 0;
  std::uint64_t embedder_calls = 0;
  std::uint64_t files_uploaded = 0;   // upload phase: files the storage has (sent now or before)
  std::uint64_t files_to_upload = 0;  // 0: no upload
  double elapsed_s = 0;
  double fps = 0;
  double eta_s = -1;               // -1: unknown
  double cpu_percent = 0;          // 100 = one core
  int threads = 0;
  double rss_mb = 0;
};

class ProgressMeter {
 public:
  explicit ProgressMeter(double window_s = 5) : window_s_(window_s) {}
  // A sample at `now_s` (seconds since the start) with the process's CPU seconds so far. Fills
  // fps, eta_s and cpu_percent of `p` (its counts and phase are the caller's).
  void update(HarvestProgress& p, double now_s, double cpu_s);

 private:
  struct Sample {
    double t, cpu;
    std::uint64_t frames;
  };
  double window_s_;
  std::deque<Sample> samples_;
};

// progress.json's text (one JSON object, the fields above).
std::string progress_json(const HarvestProgress& p);
// One terminal line, `width` columns at most, for "\r" redrawing:
// "scan [#######.....] 41% 9876/24061 frames | 312 faces 28 tracks | 85.2 fps | ETA 2:47 | CPU 196%"
// (in the upload phase, files instead of frames: "upload [##########..........] 50% 120/240 files | ...")
std::string progress_bar(const HarvestProgress& p, int width);
// A plain line for logs: "harvest: scan 9876/24061 frames (41%), 312 faces, ..."
std::string progress_line(const HarvestProgress& p);
// "2:47", "1:02:03", or "?" for a negative duration.
std::string format_duration(double seconds);

}  // namespace vigil
