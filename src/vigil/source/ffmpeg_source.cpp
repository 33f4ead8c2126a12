#include "vigil/source/ffmpeg_source.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include <atomic>
#include <cerrno>
#include <string>

#include "vigil/source/pacer.h"

namespace vigil {

namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool is_network_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return false;
  return url.compare(0, scheme_end, "file") != 0;
}

// Owns one decoded AVFrame reference (zero-copy planes) or a converted copy.
class AvFrameStorage final : public FrameStorage {
 public:
  AvFrameStorage() : frame(av_frame_alloc()) {}
  ~AvFrameStorage() override { av_frame_free(&frame); }
  AvFrameStorage(const AvFrameStorage&) = delete;
  AvFrameStorage& operator=(const AvFrameStorage&) = delete;
  void release() override {
    av_frame_unref(frame);
    decoder.reset();  // after the unref: see DecoderHandle
  }

  AVFrame* frame;
  ByteStorage converted;
  // The decoder whose buffer pool holds this frame's planes (empty for converted frames).
  std::shared_ptr<AVCodecContext> decoder;
};

// DecoderHandle: the decoder context, shared by the source and by every published frame
// that references its buffers. The buffers come from pools inside the context; the last
// holder frees it, after its own av_frame_unref. This orders "frame released on a worker"
// before "buffer pool uninitialised" through the shared_ptr's count, which ThreadSanitizer
// sees; libavutil's own atomics are not instrumented, so without it TSan reports a race
// between av_buffer_pool_uninit (decoder closed on the capture thread at a reconnect) and
// av_buffer_unref (frame released on a worker).
using DecoderHandle = std::shared_ptr<AVCodecContext>;
DecoderHandle make_decoder_handle(AVCodecContext* context) {
  return DecoderHandle(context, [](AVCodecContext* c) { avcodec_free_context(&c); });
}

// Consecutive packets the decoder may reject before the stream counts as broken.
constexpr int kMaxConsecutiveCorruptPackets = 50;

}  // namespace

struct FfmpegSource::Impl {
  SourceConfig config;
  std::shared_ptr<const std::string> camera;
  SourceInfo info;

  AVFormatContext* format = nullptr;
  AVCodecContext* decoder = nullptr;  // owned by decoder_handle
  DecoderHandle decoder_handle;
  AVPacket* packet = nullptr;
  AVFrame* decoded = nullptr;
  SwsContext* sws = nullptr;
  int stream_index = -1;
  AVRational time_base{1, 1000};
  std::int64_t start_pts = AV_NOPTS_VALUE;
  std::unique_ptr<FramePool> pool = make_frame_pool();

  std::atomic<bool> interrupted{false};
  std::atomic<std::int64_t> deadline_ns{0};
  std::int64_t deadline_ms = 0;  // the timeout behind deadline_ns, for messages
  Pacer pacer;

  std::uint64_t seq = 0;
  std::int64_t decoded_this_pass = 0;
  std::int64_t decoded_total = 0;
  std::atomic<std::int64_t> corrupt{0};
  int consecutive_corrupt = 0;
  bool input_ended = false;  // demuxer hit EOF; decoder is being drained
  std::int64_t loop_offset_ms = 0;
  std::int64_t last_pts_ms = -1;
  double frame_interval_ms = 40.0;
  SteadyTime pace_start{};
  std::int64_t pace_first_pts_ms = 0;

  ~Impl() {
    sws_freeContext(sws);
    av_frame_free(&decoded);
    av_packet_free(&packet);
    decoder = nullptr;
    decoder_handle.reset();  // freed here, or by the last frame still out
    avformat_close_input(&format);
  }

  static int interrupt_callback(void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    if (self->interrupted.load(std::memory_order_relaxed)) return 1;
    const auto deadline = self->deadline_ns.load(std::memory_order_relaxed);
    return deadline != 0 && steady_ns() > deadline ? 1 : 0;
  }

  void arm_deadline(int timeout_ms) {
    deadline_ms = timeout_ms;
    deadline_ns.store(steady_ns() + std::int64_t{timeout_ms} * 1'000'000, std::memory_order_relaxed);
  }
  void disarm_deadline() { deadline_ns.store(0, std::memory_order_relaxed); }

  // Turns an FFmpeg error code into an Error with retry meaning.
  Error error_from(int err, const std::string& what) const {
    if (interrupted.load()) return {ErrorCode::cancelled, what + ": interrupted"};
    const auto deadline = deadline_ns.load();
    if (err == AVERROR_EXIT || (deadline != 0 && steady_ns() > deadline)) {
      return {ErrorCode::deadline_exceeded, what + ": no data within " + std::to_string(deadline_ms) + " ms"};
    }
    char text[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(err, text, sizeof(text));
    ErrorCode code = ErrorCode::internal;
    switch (err) {
      case AVERROR(ENOENT):
      case AVERROR_HTTP_NOT_FOUND:
        code = ErrorCode::not_found;
        break;
      case AVERROR_INVALIDDATA:
      case AVERROR_DECODER_NOT_FOUND:
      case AVERROR_DEMUXER_NOT_FOUND:
      case AVERROR_PROTOCOL_NOT_FOUND:
      case AVERROR_STREAM_NOT_FOUND:
      case AVERROR(EISDIR):
      case AVERROR(EACCES):
        code = ErrorCode::invalid_argument;
        break;
      case AVERROR(ECONNREFUSED):
      case AVERROR(ECONNRESET):
      case AVERROR(ETIMEDOUT):
      case AVERROR(EHOSTUNREACH):
      case AVERROR(ENETUNREACH):
      case AVERROR(EPIPE):
      case AVERROR(EIO):
      case AVERROR_EOF:
      case AVERROR_HTTP_BAD_REQUEST:
      case AVERROR_HTTP_UNAUTHORIZED:
      case AVERROR_HTTP_FORBIDDEN:
      case AVERROR_HTTP_OTHER_4XX:
      case AVERROR_HTTP_SERVER_ERROR:
        code = ErrorCode::unavailable;
        break;
      default:
        code = is_network_url(config.url) ? ErrorCode::unavailable : ErrorCode::internal;
    }
    return {code, what + ": " + text};
  }

  Status open() {
    const std::string& url = config.url;
    if (url.empty()) return Error{ErrorCode::invalid_argument, "no url given"};
    format = avformat_alloc_context();
    if (!format) return Error{ErrorCode::internal, "out of memory"};
    format->interrupt_callback.callback = &Impl::interrupt_callback;
    format->interrupt_callback.opaque = this;

    AVDictionary* options = nullptr;
    const std::string timeout_us = std::to_string(std::int64_t{config.read_timeout_ms} * 1000);
    if (url.rfind("rtsp://", 0) == 0 || url.rfind("rtsps://", 0) == 0) {
      av_dict_set(&options, "rtsp_transport", config.rtsp_transport.c_str(), 0);
      av_dict_set(&options, "timeout", timeout_us.c_str(), 0);
    } else if (is_network_url(url)) {
      av_dict_set(&options, "rw_timeout", timeout_us.c_str(), 0);
    }
    arm_deadline(config.open_timeout_ms);
    int rc = avformat_open_input(&format, url.c_str(), nullptr, &options);
    av_dict_free(&options);
    if (rc < 0) return error_from(rc, "cannot open " + url);  // format was freed and nulled
    rc = avformat_find_stream_info(format, nullptr);
    if (rc < 0) return error_from(rc, "cannot read stream info of " + url);

    const AVCodec* codec = nullptr;
    stream_index = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream_index < 0 || !codec) {
      return Error{ErrorCode::invalid_argument, url + ": no decodable video stream"};
    }
    AVStream* stream = format->streams[stream_index];
    decoder = avcodec_alloc_context3(codec);
    if (!decoder) return Error{ErrorCode::internal, "out of memory"};
    decoder_handle = make_decoder_handle(decoder);
    rc = avcodec_parameters_to_context(decoder, stream->codecpar);
    if (rc < 0) return error_from(rc, url + ": bad codec parameters");
    decoder->thread_count = config.decoder_threads > 0 ? config.decoder_threads : 1;
    // Frame threading adds a frame of latency per thread: fine for files, not for live.
    decoder->thread_type = is_network_url(url) ? FF_THREAD_SLICE : (FF_THREAD_FRAME | FF_THREAD_SLICE);
    rc = avcodec_open2(decoder, codec, nullptr);
    if (rc < 0) return error_from(rc, url + ": cannot open " + codec->name + " decoder");
    if (decoder->width <= 0 || decoder->height <= 0) {
      return Error{ErrorCode::invalid_argument, url + ": video stream has no size (not a video?)"};
    }
    disarm_deadline();

    packet = av_packet_alloc();
    decoded = av_frame_alloc();
    if (!packet || !decoded) return Error{ErrorCode::internal, "out of memory"};
    time_base = stream->time_base;
    start_pts = stream->start_time;
    const AVRational rate = av_guess_frame_rate(format, stream, nullptr);
    info.width = decoder->width;
    info.height = decoder->height;
    info.fps = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0.0;
    info.live = is_network_url(url) || config.realtime;
    info.frame_count = stream->nb_frames > 0 ? stream->nb_frames : -1;
    const char* pix = av_get_pix_fmt_name(decoder->pix_fmt);
    info.description = std::string("ffmpeg ") + codec->name + " " + std::to_string(info.width) + "x" +
                       std::to_string(info.height) + " " + (pix ? pix : "?");
    frame_interval_ms = info.fps > 0 ? 1000.0 / info.fps : 40.0;
    return {};
  }

  std::int64_t pts_ms_of(const AVFrame* f) const {
    const std::int64_t ts = f->best_effort_timestamp;
    if (ts == AV_NOPTS_VALUE) return static_cast<std::int64_t>(static_cast<double>(seq) * frame_interval_ms);
    const std::int64_t base = start_pts == AV_NOPTS_VALUE ? 0 : start_pts;
    return av_rescale_q(ts - base, time_base, AVRational{1, 1000}) + loop_offset_ms;
  }

  Result<FrameRef> publish() {
    FrameRef ref = pool->acquire();
    Frame* frame = ref.mutable_get();
    if (!frame->storage) frame->storage = std::make_unique<AvFrameStorage>();
    auto& storage = static_cast<AvFrameStorage&>(*frame->storage);
    const auto pixel_format = static_cast<AVPixelFormat>(decoded->format);
    const std::int64_t pts_ms = pts_ms_of(decoded);
    Image image;
    if (pixel_format == AV_PIX_FMT_YUV420P || pixel_format == AV_PIX_FMT_YUVJ420P ||
        pixel_format == AV_PIX_FMT_NV12) {
      av_frame_move_ref(storage.frame, decoded);
      storage.decoder = decoder_handle;
      const AVFrame* f = storage.frame;
      image.format = pixel_format == AV_PIX_FMT_NV12 ? PixelFormat::nv12 : PixelFormat::yuv420p;
      image.width = f->width;
      image.height = f->height;
      image.full_range = pixel_format == AV_PIX_FMT_YUVJ420P || f->color_range == AVCOL_RANGE_JPEG;
      for (int p = 0; p < image.plane_count(); ++p) image.planes[p] = Plane{f->data[p], f->linesize[p]};
    } else {
      image = storage.converted.allocate(PixelFormat::yuv420p, decoded->width, decoded->height);
      sws = sws_getCachedContext(sws, decoded->width, decoded->height, pixel_format, decoded->width,
                                 decoded->height, AV_PIX_FMT_YUV420P, SWS_BILINEAR, nullptr, nullptr, nullptr);
      if (!sws) return Error{ErrorCode::invalid_argument, config.url + ": unsupported pixel format"};
      std::uint8_t* dst[4] = {frame->mutable_plane(0), frame->mutable_plane(1), frame->mutable_plane(2), nullptr};
      int dst_stride[4] = {image.planes[0].stride, image.planes[1].stride, image.planes[2].stride, 0};
      sws_scale(sws, decoded->data, decoded->linesize, 0, decoded->height, dst, dst_stride);
      av_frame_unref(decoded);
    }
    frame->image = image;
    frame->camera = camera;
    frame->seq = seq++;
    frame->pts_ms = pts_ms;
    last_pts_ms = pts_ms;
    ++decoded_this_pass;
    ++decoded_total;
    if (config.realtime) {
      if (frame->seq == 0) {
        pace_start = std::chrono::steady_clock::now();
        pace_first_pts_ms = pts_ms;
      } else if (!pacer.wait_until(pace_start + std::chrono::milliseconds(pts_ms - pace_first_pts_ms))) {
        return Error{ErrorCode::cancelled, "interrupted"};
      }
    }
    frame->captured_at = std::chrono::system_clock::now();
    frame->captured_steady = std::chrono::steady_clock::now();
    return ref;
  }

  Status restart_from_beginning() {
    arm_deadline(config.open_timeout_ms);
    const int rc = av_seek_frame(format, stream_index, start_pts == AV_NOPTS_VALUE ? 0 : start_pts,
                                 AVSEEK_FLAG_BACKWARD);
    disarm_deadline();
    if (rc < 0) return error_from(rc, config.url + ": cannot seek to start for loop");
    avcodec_flush_buffers(decoder);
    loop_offset_ms = last_pts_ms + static_cast<std::int64_t>(frame_interval_ms);
    // pts_ms_of adds loop_offset_ms to the stream's own time, which restarts at 0.
    decoded_this_pass = 0;
    input_ended = false;
    return {};
  }

  Result<FrameRef> read() {
    for (;;) {
      if (interrupted.load(std::memory_order_relaxed)) return Error{ErrorCode::cancelled, "interrupted"};
      int rc = avcodec_receive_frame(decoder, decoded);
      if (rc == 0) {
        consecutive_corrupt = 0;
        return publish();
      }
      if (rc == AVERROR_EOF) {
        if (config.loop && decoded_this_pass > 0) {
          VIGIL_RETURN_IF_ERROR(restart_from_beginning());
          continue;
        }
        // A container's frame count can be a frame or two over what a complete file holds
        // (FFmpeg's own AVI muxer counts 25 for a 24-frame cut), so a shortfall that small is
        // not a truncation; a file cut short misses far more.
        const std::int64_t slack = std::max<std::int64_t>(2, info.frame_count / 100);
        if (!config.loop && info.frame_count > 0 && decoded_total + slack < info.frame_count) {
          return Error{ErrorCode::data_loss, config.url + ": stream ended after " + std::to_string(decoded_total) +
                                                 " of " + std::to_string(info.frame_count) +
                                                 " frames (truncated or damaged file)"};
        }
        return FrameRef{};  // end of stream
      }
      if (rc == AVERROR_INVALIDDATA) {
        corrupt.fetch_add(1, std::memory_order_relaxed);
        if (++consecutive_corrupt > kMaxConsecutiveCorruptPackets) {
          return Error{ErrorCode::data_loss, config.url + ": too many undecodable frames in a row"};
        }
        continue;
      }
      if (rc != AVERROR(EAGAIN)) return error_from(rc, config.url + ": decode failed");

      // The decoder wants input.
      if (input_ended) {
        rc = avcodec_send_packet(decoder, nullptr);  // enter draining mode
        if (rc < 0 && rc != AVERROR_EOF) return error_from(rc, config.url + ": decoder flush failed");
        continue;
      }
      arm_deadline(config.read_timeout_ms);
      rc = av_read_frame(format, packet);
      if (rc == AVERROR_EOF && !is_network_url(config.url)) {
        disarm_deadline();
        input_ended = true;
        continue;
      }
      if (rc < 0) {
        Error error = error_from(rc, rc == AVERROR_EOF ? config.url + ": stream closed by peer" : config.url + ": read failed");
        disarm_deadline();
        return error;
      }
      disarm_deadline();
      if (packet->stream_index != stream_index) {
        av_packet_unref(packet);
        continue;
      }
      rc = avcodec_send_packet(decoder, packet);
      av_packet_unref(packet);
      if (rc == AVERROR_INVALIDDATA) {
        corrupt.fetch_add(1, std::memory_order_relaxed);
        if (++consecutive_corrupt > kMaxConsecutiveCorruptPackets) {
          return Error{ErrorCode::data_loss, config.url + ": too many corrupt packets in a row"};
        }
        continue;
      }
      if (rc < 0) return error_from(rc, config.url + ": decode failed");
    }
  }
};

FfmpegSource::FfmpegSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FfmpegSource::~FfmpegSource() = default;

Result<std::unique_ptr<FfmpegSource>> FfmpegSource::open(const SourceConfig& config, const std::string& camera_id) {
  av_log_set_level(AV_LOG_FATAL);  // errors come back as values with their own messages
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->camera = std::make_shared<const std::string>(camera_id);
  if (Status status = impl->open(); !status.ok()) return status.error();
  return std::unique_ptr<FfmpegSource>(new FfmpegSource(std::move(impl)));
}

Result<FrameRef> FfmpegSource::read() { return impl_->read(); }
const SourceInfo& FfmpegSource::info() const { return impl_->info; }
void FfmpegSource::interrupt() {
  impl_->interrupted.store(true);
  impl_->pacer.interrupt();
}
std::int64_t FfmpegSource::corrupt_packets() const { return impl_->corrupt.load(); }

}  // namespace vigil
