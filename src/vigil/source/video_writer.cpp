#include "vigil/source/video_writer.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
}

#include <algorithm>
#include <cstring>

namespace vigil {

namespace {

std::string av_error_text(int err) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, text, sizeof(text));
  return text;
}

}  // namespace

struct VideoWriter::Impl {
  VideoWriterConfig config;
  AVFormatContext* format = nullptr;
  AVCodecContext* codec = nullptr;
  AVStream* stream = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* packet = nullptr;
  std::int64_t next_pts = 0;
  bool header_written = false;
  bool closed = false;

  ~Impl() {
    av_packet_free(&packet);
    av_frame_free(&frame);
    avcodec_free_context(&codec);
    if (format) {
      if (format->pb && !(format->oformat->flags & AVFMT_NOFILE)) avio_closep(&format->pb);
      avformat_free_context(format);
    }
  }

  Error fail(const std::string& what, int err) const {
    return Error{ErrorCode::internal, config.path + ": " + what + ": " + av_error_text(err)};
  }

  // Sends `f` (nullptr: flush) and writes every packet the encoder has ready.
  Status encode(AVFrame* f) {
    if (int err = avcodec_send_frame(codec, f); err < 0) return fail("encoding failed", err);
    for (;;) {
      const int err = avcodec_receive_packet(codec, packet);
      if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return {};
      if (err < 0) return fail("encoding failed", err);
      if (packet->duration <= 0) packet->duration = 1;  // one frame: else MP4 drops the last one
      av_packet_rescale_ts(packet, codec->time_base, stream->time_base);
      packet->stream_index = stream->index;
      const int written = av_interleaved_write_frame(format, packet);
      av_packet_unref(packet);
      if (written < 0) return Error{ErrorCode::data_loss, config.path + ": cannot write: " + av_error_text(written)};
    }
  }
};

VideoWriter::VideoWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

VideoWriter::~VideoWriter() {
  if (impl_ && !impl_->closed) (void)close();
}

Result<std::unique_ptr<VideoWriter>> VideoWriter::open(const VideoWriterConfig& config) {
  if (config.width <= 0 || config.height <= 0 || config.width % 2 || config.height % 2 || config.fps <= 0) {
    return Error{ErrorCode::invalid_argument, "video writer: width and height must be even and positive, fps positive"};
  }
  // Encoders log statistics at info level; errors come back as values.
  if (av_log_get_level() > AV_LOG_ERROR) av_log_set_level(AV_LOG_ERROR);
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  if (int err = avformat_alloc_output_context2(&impl->format, nullptr, nullptr, config.path.c_str()); err < 0) {
    return Error{ErrorCode::invalid_argument, config.path + ": no container for this file name: " + av_error_text(err)};
  }
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (!codec) codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
  if (!codec) return Error{ErrorCode::failed_precondition, "video writer: FFmpeg has neither libx264 nor an MPEG-4 encoder"};
  impl->stream = avformat_new_stream(impl->format, nullptr);
  impl->codec = avcodec_alloc_context3(codec);
  impl->frame = av_frame_alloc();
  impl->packet = av_packet_alloc();
  if (!impl->stream || !impl->codec || !impl->frame || !impl->packet) {
    return Error{ErrorCode::resource_exhausted, "video writer: out of memory"};
  }
  AVCodecContext* c = impl->codec;
  c->width = config.width;
  c->height = config.height;
  c->pix_fmt = AV_PIX_FMT_YUV420P;
  c->time_base = AVRational{1, config.fps};
  c->framerate = AVRational{config.fps, 1};
  c->gop_size = 2 * config.fps;
  c->max_b_frames = 0;  // decode order = presentation order
  c->thread_count = 1;  // deterministic output
  if (impl->format->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (std::strcmp(codec->name, "libx264") == 0) {
    av_opt_set(c->priv_data, "preset", "veryfast", 0);
    av_opt_set_int(c->priv_data, "crf", config.crf, 0);
  } else {
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = FF_QP2LAMBDA * std::clamp(config.crf / 6, 1, 31);
  }
  if (int err = avcodec_open2(c, codec, nullptr); err < 0) return impl->fail("cannot open the encoder", err);
  if (int err = avcodec_parameters_from_context(impl->stream->codecpar, c); err < 0) {
    return impl->fail("cannot set stream parameters", err);
  }
  impl->stream->time_base = c->time_base;
  if (!(impl->format->oformat->flags & AVFMT_NOFILE)) {
    if (int err = avio_open(&impl->format->pb, config.path.c_str(), AVIO_FLAG_WRITE); err < 0) {
      return Error{ErrorCode::not_found, config.path + ": cannot create: " + av_error_text(err)};
    }
  }
  if (int err = avformat_write_header(impl->format, nullptr); err < 0) return impl->fail("cannot write the header", err);
  impl->header_written = true;
  impl->frame->format = AV_PIX_FMT_YUV420P;
  impl->frame->width = config.width;
  impl->frame->height = config.height;
  return std::unique_ptr<VideoWriter>(new VideoWriter(std::move(impl)));
}

Status VideoWriter::write(const Image& image) {
  Impl& w = *impl_;
  if (w.closed) return Error{ErrorCode::failed_precondition, w.config.path + ": writer is closed"};
  if (image.format != PixelFormat::yuv420p || image.width != w.config.width || image.height != w.config.height) {
    return Error{ErrorCode::invalid_argument, w.config.path + ": expected a YUV420P picture of the configured size"};
  }
  for (int p = 0; p < 3; ++p) {
    w.frame->data[p] = const_cast<std::uint8_t*>(image.planes[p].data);
    w.frame->linesize[p] = image.planes[p].stride;
  }
  w.frame->pts = w.next_pts++;
  return w.encode(w.frame);
}

Status VideoWriter::close() {
  Impl& w = *impl_;
  if (w.closed) return {};
  w.closed = true;
  Status flushed = w.encode(nullptr);
  if (w.header_written) {
    if (int err = av_write_trailer(w.format); err < 0 && flushed.ok()) {
      flushed = Error{ErrorCode::data_loss, w.config.path + ": cannot write the trailer: " + av_error_text(err)};
    }
  }
  if (w.format->pb && !(w.format->oformat->flags & AVFMT_NOFILE)) {
    if (int err = avio_closep(&w.format->pb); err < 0 && flushed.ok()) {
      flushed = Error{ErrorCode::data_loss, w.config.path + ": cannot close: " + av_error_text(err)};
    }
  }
  return flushed;
}

std::string VideoWriter::codec_name() const { return impl_->codec->codec->name; }

}  // namespace vigil
