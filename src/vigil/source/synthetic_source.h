// SyntheticSource: cameras without a camera, for demos, tests and benchmarks.
//
// Patterns:
//   procedural  moving shapes on a moving gradient (no input needed)
//   image       a window that pans and zooms over a picture (e.g. a group photo), so the
//               detector and the tracker get real faces that move along a known path
//               (PanGeometry, which tests use as ground truth)
//   video       a file decoded in a loop, scaled to the configured size
// Output is YUV420P at the configured size. With `live: true` frame k is due at
// start + k / fps; a reader that falls behind skips to the current frame, as with a real
// camera (skipped() counts them). With `live: false` frames come as fast as they are read.
//
// Threading: one reader thread calls read(); interrupt() from any thread.
// Example config:
//   source: {type: synthetic, pattern: image, path: sample1.jpg, width: 1280, height: 720,
//            fps: 15, zoom_min: 1.2, zoom_max: 1.8, pan_period_s: 8}
#pragma once

#include <cstdint>
#include <memory>

#include "vigil/source/source.h"

namespace vigil {

// An axis-aligned rectangle in integer pixels.
struct PixelRect {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
};

// PanGeometry: which window of the picture frame `seq` shows. Pure function of seq.
// The window keeps the output's aspect ratio; its size is the largest such window that
// fits the picture divided by a zoom that swings between zoom_min and zoom_max; its centre
// sweeps across the picture and back once per period (vertically at half that speed).
// Window corners and sizes are even, so chroma planes map exactly.
class PanGeometry {
 public:
  PanGeometry(int picture_width, int picture_height, int out_width, int out_height, double zoom_min,
              double zoom_max, double period_frames);
  PixelRect window_at(std::uint64_t seq) const;
  int out_width() const { return out_width_; }
  int out_height() const { return out_height_; }

 private:
  int picture_width_, picture_height_, out_width_, out_height_;
  double zoom_min_, zoom_max_, period_frames_;
};

// FaultSchedule: what a synthetic camera's scheduled faults do at a given time since the
// camera started. Pure function of time.
class FaultSchedule {
 public:
  enum class Phase { normal, stalled, disconnected };
  explicit FaultSchedule(FaultConfig config) : config_(std::move(config)) {}
  Phase phase_at(double t_s) const;
  // True if frame `index` (frames every interval_s from time 0) is the first frame at or
  // after a corrupt fault.
  bool corrupt_frame(std::uint64_t index, double interval_s) const;
  bool enabled() const { return config_.every_s > 0 && !config_.kinds.empty(); }
  const FaultConfig& config() const { return config_; }

 private:
  FaultConfig config_;
};

class SyntheticSource final : public Source {
 public:
  static Result<std::unique_ptr<SyntheticSource>> open(const SourceConfig& config, const std::string& camera_id);
  ~SyntheticSource() override;

  Result<FrameRef> read() override;
  const SourceInfo& info() const override;
  void interrupt() override;

  // Renders frame `index` of the timeline now, without pacing (the engine's timers pace
  // live synthetic cameras; read() paces for standalone use). One caller at a time.
  Result<FrameRef> render(std::uint64_t index);

  // Frames a live source skipped because its reader was late.
  std::uint64_t skipped() const;
  // For the image pattern: its geometry (nullptr for other patterns).
  const PanGeometry* pan() const;
  // For the image pattern: the decoded picture it pans over, read-only and shared by every
  // source open on the same file (nullptr for other patterns).
  const Image* picture() const;

 private:
  struct Impl;
  explicit SyntheticSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil
