#include "vigil/source/synthetic_source.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <numbers>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "vigil/core/mutex.h"
#include "vigil/source/ffmpeg_source.h"
#include "vigil/source/pacer.h"

namespace vigil {

namespace {

int even_floor(double v) { return static_cast<int>(std::floor(v / 2.0)) * 2; }

double triangle(double t) {  // 0 at t=0, 1 at t=0.5, 0 at t=1, periodic
  const double f = t - std::floor(t);
  return 1.0 - std::abs(2.0 * f - 1.0);
}

cv::Mat plane_mat(const Image& image, int plane, int channels = 1) {
  return cv::Mat(image.plane_height(plane), image.plane_width(plane), CV_8UC(channels),
                 const_cast<std::uint8_t*>(image.planes[plane].data), static_cast<std::size_t>(image.planes[plane].stride));
}

// Scales `roi` of a YUV420P or NV12 image into a YUV420P image (one pass per plane).
void scale_region(const Image& src, PixelRect roi, const Image& dst) {
  // Area averaging only pays for itself when shrinking by 2x or more (aliasing); below that,
  // bilinear looks the same and costs a fraction.
  const int interpolation = roi.width >= 2 * dst.width ? cv::INTER_AREA : cv::INTER_LINEAR;
  cv::Mat y_dst = plane_mat(dst, 0);
  cv::resize(plane_mat(src, 0)(cv::Rect(roi.x, roi.y, roi.width, roi.height)), y_dst, y_dst.size(), 0, 0,
             interpolation);
  const cv::Rect chroma_roi(roi.x / 2, roi.y / 2, std::max(1, roi.width / 2), std::max(1, roi.height / 2));
  cv::Mat u_dst = plane_mat(dst, 1);
  cv::Mat v_dst = plane_mat(dst, 2);
  if (src.format == PixelFormat::nv12) {
    cv::Mat uv(u_dst.size(), CV_8UC2);  // rare path (synthetic video from an NV12 decoder)
    cv::resize(plane_mat(src, 1, 2)(chroma_roi), uv, uv.size(), 0, 0, interpolation);
    cv::Mat out[] = {u_dst, v_dst};
    cv::split(uv, out);
  } else {
    cv::resize(plane_mat(src, 1)(chroma_roi), u_dst, u_dst.size(), 0, 0, interpolation);
    cv::resize(plane_mat(src, 2)(chroma_roi), v_dst, v_dst.size(), 0, 0, interpolation);
  }
}

// A picture decoded once into YUV420P (even size), read-only, shared by every camera that pans
// over the same file: sixteen cameras over six photos keep six pictures, not sixteen, so what
// they read between two frames of one camera stays in the CPU's cache.
struct Picture {
  ByteStorage storage;
  Image image;
};

Result<std::shared_ptr<const Picture>> decode_picture(const std::string& path) {
  cv::Mat bgr;
  try {
    bgr = cv::imread(path, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return Error{ErrorCode::invalid_argument, path + ": " + e.what()};
  }
  if (bgr.empty()) return Error{ErrorCode::invalid_argument, path + ": missing or not an image"};
  bgr = bgr(cv::Rect(0, 0, bgr.cols & ~1, bgr.rows & ~1));
  cv::Mat i420;
  cv::cvtColor(bgr, i420, cv::COLOR_BGR2YUV_I420);
  auto picture = std::make_shared<Picture>();
  picture->image = picture->storage.allocate(PixelFormat::yuv420p, bgr.cols, bgr.rows);
  const Image& image = picture->image;
  const std::uint8_t* src = i420.ptr<std::uint8_t>();
  for (int p = 0; p < 3; ++p) {
    const int w = image.plane_width(p);
    const int h = image.plane_height(p);
    auto* dst = const_cast<std::uint8_t*>(image.planes[p].data);
    for (int row = 0; row < h; ++row) std::copy_n(src + row * w, w, dst + row * image.planes[p].stride);
    src += static_cast<std::size_t>(w) * h;
  }
  return std::shared_ptr<const Picture>(std::move(picture));
}

// The decoded picture of `path`, shared while any camera holds it; a file changed on disk
// since (size or time) is decoded again.
Mutex pictures_mu;
std::map<std::string, std::weak_ptr<const Picture>> pictures GUARDED_BY(pictures_mu);  // by path, size and time

Result<std::shared_ptr<const Picture>> load_picture(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  const auto time = std::filesystem::last_write_time(path, ec).time_since_epoch().count();
  const std::string key = path + '\n' + std::to_string(size) + '\n' + std::to_string(time);
  MutexLock lock(pictures_mu);
  if (std::shared_ptr<const Picture> cached = pictures[key].lock()) return cached;
  auto decoded = decode_picture(path);
  if (!decoded.ok()) return decoded.error();
  pictures[key] = *decoded;
  std::erase_if(pictures, [](const auto& entry) { return entry.second.expired(); });
  return decoded;
}

}  // namespace

PanGeometry::PanGeometry(int picture_width, int picture_height, int out_width, int out_height, double zoom_min,
                         double zoom_max, double period_frames)
    : picture_width_(picture_width),
      picture_height_(picture_height),
      out_width_(out_width),
      out_height_(out_height),
      zoom_min_(std::max(1.0, zoom_min)),
      zoom_max_(std::max(std::max(1.0, zoom_min), zoom_max)),
      period_frames_(std::max(1.0, period_frames)) {}

PixelRect PanGeometry::window_at(std::uint64_t seq) const {
  const double aspect = static_cast<double>(out_width_) / out_height_;
  double base_w = picture_width_;
  double base_h = picture_width_ / aspect;
  if (base_h > picture_height_) {
    base_h = picture_height_;
    base_w = picture_height_ * aspect;
  }
  const double t = static_cast<double>(seq) / period_frames_;
  const double swing = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * t);
  const double zoom = zoom_min_ + (zoom_max_ - zoom_min_) * swing;
  PixelRect r;
  r.width = std::max(2, even_floor(base_w / zoom));
  r.height = std::max(2, even_floor(base_h / zoom));
  const double cx = r.width / 2.0 + (picture_width_ - r.width) * triangle(t);
  const double cy = r.height / 2.0 + (picture_height_ - r.height) * triangle(0.5 * t + 0.25);
  r.x = std::clamp(even_floor(cx - r.width / 2.0), 0, std::max(0, (picture_width_ - r.width) & ~1));
  r.y = std::clamp(even_floor(cy - r.height / 2.0), 0, std::max(0, (picture_height_ - r.height) & ~1));
  return r;
}

struct SyntheticSource::Impl {
  SourceConfig config;
  std::shared_ptr<const std::string> camera;
  SourceInfo info;
  std::unique_ptr<FramePool> pool = make_frame_pool();
  Pacer pacer;
  std::atomic<std::uint64_t> skipped{0};

  std::uint64_t next_index = 0;  // frame index on the source's own timeline
  SteadyTime start{};

  // image pattern
  std::shared_ptr<const Picture> picture;  // the whole picture as YUV420P, even size
  std::unique_ptr<PanGeometry> pan;

  // video pattern
  std::unique_ptr<FfmpegSource> video;

  Status open() {
    if (config.width < 16 || config.height < 16 || config.width % 2 || config.height % 2) {
      return Error{ErrorCode::invalid_argument, "width and height must be even and at least 16"};
    }
    if (!(config.fps > 0 && config.fps <= 1000)) return Error{ErrorCode::invalid_argument, "fps must be in (0, 1000]"};
    info.width = config.width;
    info.height = config.height;
    info.fps = config.fps;
    info.live = config.live;
    switch (config.pattern) {
      case SyntheticPattern::procedural:
        info.description = "synthetic procedural";
        break;
      case SyntheticPattern::image: {
        auto loaded = load_picture(config.path);  // once, at start-up
        if (!loaded.ok()) return loaded.error();
        picture = std::move(loaded).value();
        pan = std::make_unique<PanGeometry>(picture->image.width, picture->image.height, config.width, config.height,
                                            config.zoom_min, config.zoom_max, config.pan_period_s * config.fps);
        info.description = "synthetic image pan over " + config.path;
        break;
      }
      case SyntheticPattern::video: {
        SourceConfig file = config;
        file.type = SourceType::file;
        file.url = config.path;
        file.loop = true;
        file.realtime = false;  // this source paces itself
        auto opened = FfmpegSource::open(file, *camera);
        if (!opened.ok()) return opened.error();
        video = std::move(opened).value();
        info.description = "synthetic video loop of " + config.path;
        break;
      }
    }
    return {};
  }

  void render_procedural(const Image& img, std::uint64_t index) {
    const int phase = static_cast<int>(index * 3);
    for (int y = 0; y < img.height; ++y) {
      auto* row = const_cast<std::uint8_t*>(img.planes[0].data + y * img.planes[0].stride);
      for (int x = 0; x < img.width; ++x) row[x] = static_cast<std::uint8_t>(40 + ((x + y + phase) & 127));
    }
    for (int p = 1; p < 3; ++p) {
      for (int y = 0; y < img.plane_height(p); ++y) {
        auto* row = const_cast<std::uint8_t*>(img.planes[p].data + y * img.planes[p].stride);
        std::fill_n(row, img.plane_width(p), std::uint8_t{128});
      }
    }
    // Three boxes bouncing at different speeds, each with its own colour.
    static constexpr int kSpeeds[3][2] = {{7, 5}, {-4, 9}, {11, -3}};
    static constexpr std::uint8_t kColours[3][3] = {{200, 90, 200}, {120, 200, 60}, {80, 60, 120}};
    const int box_w = img.width / 8;
    const int box_h = img.height / 6;
    for (int b = 0; b < 3; ++b) {
      auto bounce = [](long long pos, int span) {
        const long long period = 2LL * span;
        long long m = ((pos % period) + period) % period;
        return static_cast<int>(m < span ? m : period - m);
      };
      const int x0 = bounce(static_cast<long long>(index) * kSpeeds[b][0] + b * 200, img.width - box_w) & ~1;
      const int y0 = bounce(static_cast<long long>(index) * kSpeeds[b][1] + b * 100, img.height - box_h) & ~1;
      for (int y = y0; y < y0 + box_h; ++y) {
        std::fill_n(const_cast<std::uint8_t*>(img.planes[0].data + y * img.planes[0].stride + x0), box_w,
                    kColours[b][0]);
      }
      for (int p = 1; p < 3; ++p) {
        for (int y = y0 / 2; y < (y0 + box_h) / 2; ++y) {
          std::fill_n(const_cast<std::uint8_t*>(img.planes[p].data + y * img.planes[p].stride + x0 / 2), box_w / 2,
                      kColours[b][p]);
        }
      }
    }
  }

  Result<FrameRef> read() {
    if (pacer.interrupted()) return Error{ErrorCode::cancelled, "interrupted"};
    const auto interval = std::chrono::duration<double>(1.0 / config.fps);
    if (config.live) {
      const auto now = std::chrono::steady_clock::now();
      if (next_index == 0) start = now;
      const auto due = [&](std::uint64_t k) {
        return start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval * static_cast<double>(k));
      };
      // A late reader gets the current frame, as from a real camera; the rest are skipped.
      const auto current = static_cast<std::uint64_t>(std::chrono::duration<double>(now - start) / interval);
      if (current > next_index) {
        skipped.fetch_add(current - next_index, std::memory_order_relaxed);
        next_index = current;
      }
      if (!pacer.wait_until(due(next_index))) return Error{ErrorCode::cancelled, "interrupted"};
    }
    auto frame = render(next_index);
    ++next_index;
    return frame;
  }

  Result<FrameRef> render(std::uint64_t index) {
    FrameRef ref = pool->acquire();
    Frame* frame = ref.mutable_get();
    if (!frame->storage) frame->storage = std::make_unique<ByteStorage>();
    auto& storage = static_cast<ByteStorage&>(*frame->storage);
    frame->image = storage.allocate(PixelFormat::yuv420p, config.width, config.height);
    switch (config.pattern) {
      case SyntheticPattern::procedural:
        render_procedural(frame->image, index);
        break;
      case SyntheticPattern::image:
        scale_region(picture->image, pan->window_at(index), frame->image);
        break;
      case SyntheticPattern::video: {
        auto source_frame = video->read();
        if (!source_frame.ok()) return source_frame.error();
        if (!*source_frame) return Error{ErrorCode::data_loss, config.path + ": video has no frames to loop"};
        const Image& src = (*source_frame)->image;
        scale_region(src, PixelRect{0, 0, src.width & ~1, src.height & ~1}, frame->image);
        break;
      }
    }
    frame->camera = camera;
    frame->seq = index;
    frame->pts_ms = static_cast<std::int64_t>(std::llround(static_cast<double>(index) * 1000.0 / config.fps));
    frame->captured_at = std::chrono::system_clock::now();
    frame->captured_steady = std::chrono::steady_clock::now();
    return ref;
  }
};

SyntheticSource::SyntheticSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SyntheticSource::~SyntheticSource() = default;

Result<std::unique_ptr<SyntheticSource>> SyntheticSource::open(const SourceConfig& config,
                                                               const std::string& camera_id) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->camera = std::make_shared<const std::string>(camera_id);
  if (Status status = impl->open(); !status.ok()) return status.error();
  return std::unique_ptr<SyntheticSource>(new SyntheticSource(std::move(impl)));
}

Result<FrameRef> SyntheticSource::read() { return impl_->read(); }
Result<FrameRef> SyntheticSource::render(std::uint64_t index) { return impl_->render(index); }

FaultSchedule::Phase FaultSchedule::phase_at(double t_s) const {
  if (!enabled() || t_s < config_.every_s) return Phase::normal;
  const auto k = static_cast<std::uint64_t>(std::floor(t_s / config_.every_s)) - 1;  // latest fault started
  const double since = t_s - config_.every_s * static_cast<double>(k + 1);
  switch (config_.kinds[k % config_.kinds.size()]) {
    case FaultKind::stall:
      return since < config_.stall_s ? Phase::stalled : Phase::normal;
    case FaultKind::disconnect:
      return since < config_.disconnect_s ? Phase::disconnected : Phase::normal;
    case FaultKind::corrupt:
      return Phase::normal;
  }
  return Phase::normal;
}

bool FaultSchedule::corrupt_frame(std::uint64_t index, double interval_s) const {
  if (!enabled()) return false;
  const double t_s = static_cast<double>(index) * interval_s;
  // The latest fault at or before this frame (a small epsilon absorbs rounding).
  const auto n = static_cast<std::int64_t>(std::floor((t_s + 1e-9) / config_.every_s));
  if (n < 1) return false;
  const auto k = static_cast<std::uint64_t>(n - 1);
  if (config_.kinds[k % config_.kinds.size()] != FaultKind::corrupt) return false;
  const double fault_t = config_.every_s * static_cast<double>(k + 1);
  const auto first = static_cast<std::uint64_t>(std::ceil(fault_t / interval_s - 1e-9));
  return index == first;
}
const SourceInfo& SyntheticSource::info() const { return impl_->info; }
void SyntheticSource::interrupt() {
  impl_->pacer.interrupt();
  if (impl_->video) impl_->video->interrupt();
}
std::uint64_t SyntheticSource::skipped() const { return impl_->skipped.load(); }
const PanGeometry* SyntheticSource::pan() const { return impl_->pan.get(); }
const Image* SyntheticSource::picture() const { return impl_->picture ? &impl_->picture->image : nullptr; }

}  // namespace vigil
