#include "vigil/sink/jsonl_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "vigil/core/clock.h"

namespace vigil {

namespace {

Error errno_error(const std::string& what) {
  const int err = errno;
  const ErrorCode code = err == ENOENT ? ErrorCode::not_found
                         : (err == EACCES || err == EISDIR || err == EROFS) ? ErrorCode::invalid_argument
                         : (err == ENOSPC || err == EDQUOT) ? ErrorCode::resource_exhausted
                                                            : ErrorCode::unavailable;
  return {code, what + ": " + std::strerror(err)};
}

// Finds the length of the file up to and including its last '\n' (0 if there is none).
Result<off_t> length_through_last_newline(int fd, off_t size) {
  char buffer[4096];
  off_t end = size;
  while (end > 0) {
    const off_t begin = end > static_cast<off_t>(sizeof(buffer)) ? end - static_cast<off_t>(sizeof(buffer)) : 0;
    const auto want = static_cast<std::size_t>(end - begin);
    const ssize_t got = pread(fd, buffer, want, begin);
    if (got != static_cast<ssize_t>(want)) return errno_error("read");
    for (auto i = static_cast<ssize_t>(want) - 1; i >= 0; --i) {
      if (buffer[i] == '\n') return begin + i + 1;
    }
    end = begin;
  }
  return off_t{0};
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}
void append_number(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}
void append_fixed(std::string& out, float v, int precision) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed, precision);
  out.append(buf, r.ptr);
}
// A JSON string: quotes, backslashes and control characters escaped.
void append_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      static const char hex[] = "0123456789abcdef";
      out += "\\u00";
      out += hex[(c >> 4) & 0xf];
      out += hex[c & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

void append_identity(std::string& out, const Identity& id) {
  out += ",\"identity\":{\"name\":";
  append_string(out, id.name);
  out += ",\"known\":";
  out += id.known ? "true" : "false";
  out += ",\"similarity\":";
  append_fixed(out, id.similarity, 3);
  if (id.known) {
    out += ",\"margin\":";
    append_fixed(out, id.margin, 3);
  }
  out += '}';
}

void append_bbox(std::string& out, const BBox& b) {
  out += '[';
  append_fixed(out, b.x1, 1);
  out += ',';
  append_fixed(out, b.y1, 1);
  out += ',';
  append_fixed(out, b.x2, 1);
  out += ',';
  append_fixed(out, b.y2, 1);
  out += ']';
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

JsonlSink::JsonlSink(JsonlSinkConfig config, int fd, std::size_t repaired)
    : config_(std::move(config)), fd_(fd), repaired_bytes_(repaired) {}

JsonlSink::~JsonlSink() { (void)close(); }

Result<std::unique_ptr<JsonlSink>> JsonlSink::open(const JsonlSinkConfig& config) {
  if (config.path.empty()) return Error{ErrorCode::invalid_argument, "jsonl sink: no path given"};
  const std::filesystem::path path(config.path);
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  const int fd = ::open(config.path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return errno_error("cannot open " + config.path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    Error e = errno_error("cannot stat " + config.path);
    ::close(fd);
    return e;
  }
  std::size_t repaired = 0;
  if (st.st_size > 0) {
    char last = '\n';
    if (pread(fd, &last, 1, st.st_size - 1) != 1) {
      Error e = errno_error("cannot read " + config.path);
      ::close(fd);
      return e;
    }
    if (last != '\n') {  // torn last line from a crash: cut it off
      auto keep = length_through_last_newline(fd, st.st_size);
      if (!keep.ok() || ftruncate(fd, *keep) != 0) {
        Error e = keep.ok() ? errno_error("cannot repair " + config.path) : keep.error();
        ::close(fd);
        return e;
      }
      repaired = static_cast<std::size_t>(st.st_size - *keep);
    }
  }
  return std::unique_ptr<JsonlSink>(new JsonlSink(config, fd, repaired));
}

Status JsonlSink::write(const FrameResult& result) {
  if (fd_ < 0) return Error{ErrorCode::failed_precondition, "jsonl sink is closed"};
  const Frame& frame = *result.frame;
  // One buffer per writing thread, reused: no allocation per frame, no lock between
  // workers (each line is one O_APPEND write, which the kernel keeps whole).
  thread_local std::string line;
  line.clear();
  line += "{\"camera\":";
  append_json_string(line, frame.camera ? std::string_view(*frame.camera) : std::string_view());
  line += ",\"seq\":";
  append_number(line, static_cast<std::uint64_t>(frame.seq));
  line += ",\"pts_ms\":";
  append_number(line, static_cast<std::int64_t>(frame.pts_ms));
  line += ",\"captured_at\":\"";
  char time_text[32];
  line.append(time_text, format_utc_iso8601(frame.captured_at, time_text));
  line += "\",\"model\":";
  append_json_string(line, result.model);
  line += ",\"detected\":";
  line += result.detected ? "true" : "false";
  line += ",\"detections\":[";
  bool first = true;
  for (const Detection& d : result.detections) {
    if (!first) line += ',';
    first = false;
    line += "{\"bbox\":";
    append_bbox(line, d.bbox);
    line += ",\"score\":";
    append_fixed(line, d.score, 3);
    if (d.class_id >= 0) {
      line += ",\"class\":";
      append_number(line, static_cast<std::uint64_t>(d.class_id));
    }
    if (result.tracked) {
      line += ",\"track_id\":";
      append_number(line, static_cast<std::uint64_t>(d.track_id));
    }
    line += ",\"keypoints\":[";
    for (int k = 0; k < d.keypoint_count; ++k) {
      if (k) line += ',';
      line += '[';
      append_fixed(line, d.keypoints[k].x, 1);
      line += ',';
      append_fixed(line, d.keypoints[k].y, 1);
      line += ']';
    }
    line += ']';
    if (d.keypoint_count == Detection::kMaxKeypoints) {  // a person's COCO keypoints: how sure the model is of each
      line += ",\"keypoint_scores\":[";
      for (int k = 0; k < d.keypoint_count; ++k) {
        if (k) line += ',';
        append_fixed(line, d.keypoint_scores[static_cast<std::size_t>(k)], 3);
      }
      line += ']';
    }
    line += '}';
  }
  line += ']';
  if (result.tracked) {
    line += ",\"tracks\":[";
    first = true;
    for (const TrackedObject& t : result.tracks) {
      if (!first) line += ',';
      first = false;
      line += "{\"track_id\":";
      append_number(line, static_cast<std::uint64_t>(t.track_id));
      line += ",\"bbox\":";
      append_bbox(line, t.bbox);
      line += ",\"score\":";
      append_fixed(line, t.score, 3);
      line += ",\"predicted\":";
      line += t.predicted ? "true" : "false";
      if (!t.identity.empty()) append_identity(line, t.identity);
      line += '}';
    }
    line += "],\"track_events\":[";
    first = true;
    for (const TrackEvent& e : result.track_events) {
      if (!first) line += ',';
      first = false;
      line += "{\"event\":\"";
      line += to_string(e.kind);
      line += "\",\"track_id\":";
      append_number(line, static_cast<std::uint64_t>(e.track_id));
      line += '}';
    }
    line += ']';
  }
  if (!result.faces.empty()) {  // faces embedded in this frame (not the vectors: 128 floats each)
    line += ",\"faces\":[";
    first = true;
    for (const FaceResult& f : result.faces) {
      if (!first) line += ',';
      first = false;
      line += "{\"detection\":";
      append_number(line, static_cast<std::int64_t>(f.detection));
      line += ",\"track_id\":";
      append_number(line, static_cast<std::uint64_t>(f.track_id));
      line += ",\"quality\":";
      append_fixed(line, f.quality, 3);
      if (!f.identity.empty()) append_identity(line, f.identity);
      line += '}';
    }
    line += ']';
  }
  line += "}\n";
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("jsonl sink: write to " + config_.path);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  lines_.fetch_add(1, std::memory_order_relaxed);
  return {};
}

Status JsonlSink::flush() {
  if (fd_ >= 0 && config_.fsync && fsync(fd_) != 0) return errno_error("jsonl sink: fsync " + config_.path);
  return {};
}

Status JsonlSink::close() {
  if (fd_ < 0) return {};
  Status status = flush();
  ::close(fd_);
  fd_ = -1;
  return status;
}

}  // namespace vigil
