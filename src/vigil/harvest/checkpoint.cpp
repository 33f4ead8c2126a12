#include "vigil/harvest/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>

extern "C" {
#include <libavutil/mem.h>
#include <libavutil/sha.h>
}

namespace vigil {

namespace {

// Appends plain values byte for byte (the machines vigil runs on are little-endian; the
// journal is read back only by the machine that wrote it).
class Writer {
 public:
  explicit Writer(RecordKind kind) { out_.push_back(static_cast<char>(kind)); }
  template <typename T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put_bytes(const void* data, std::size_t n) { out_.append(static_cast<const char*>(data), n); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in.substr(1)) {}
  template <typename T>
  bool get(T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (in_.size() < sizeof v) return false;
    std::memcpy(&v, in_.data(), sizeof v);
    in_.remove_prefix(sizeof v);
    return true;
  }
  bool get_bytes(void* data, std::size_t n) {
    if (in_.size() < n) return false;
    std::memcpy(data, in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  std::size_t left() const { return in_.size(); }

 private:
  std::string_view in_;
};

Error malformed(const char* what) {
  return Error{ErrorCode::data_loss, std::string("the harvest journal holds a malformed ") + what + " record"};
}

}  // namespace

std::optional<RecordKind> record_kind(std::string_view record) {
  if (record.empty()) return std::nullopt;
  switch (record[0]) {
    case 'H': return RecordKind::header;
    case 'D': return RecordKind::detections;
    case 'E': return RecordKind::embeddings;
    case 'S': return RecordKind::upload_started;
    case 'U': return RecordKind::uploaded;
    default: return std::nullopt;
  }
}

std::string encode_header(std::string_view fingerprint) {
  Writer w(RecordKind::header);
  w.put_bytes(fingerprint.data(), fingerprint.size());
  return w.take();
}

Result<std::string> decode_header(std::string_view record) {
  if (record_kind(record) != RecordKind::header) return malformed("header");
  return std::string(record.substr(1));
}

std::string encode_detections(std::uint32_t input, std::uint64_t first_frame, std::span<const Detections> frames) {
  Writer w(RecordKind::detections);
  w.put(input);
  w.put(first_frame);
  w.put(static_cast<std::uint32_t>(frames.size()));
  for (const Detections& f : frames) {
    w.put(static_cast<std::uint32_t>(f.size()));
    for (const Detection& d : f) {
      w.put(d.bbox);
      w.put(d.score);
      w.put(static_cast<std::int32_t>(d.class_id));
      w.put(static_cast<std::int32_t>(d.keypoint_count));
      const auto n = static_cast<std::size_t>(std::clamp(d.keypoint_count, 0, Detection::kMaxKeypoints));
      w.put_bytes(d.keypoints.data(), n * sizeof(Point2));
      w.put_bytes(d.keypoint_scores.data(), n * sizeof(float));
    }
  }
  return w.take();
}

Status decode_detections_key(std::string_view record, DetectionBatch& out) {
  if (record_kind(record) != RecordKind::detections) return malformed("detection");
  Reader r(record);
  if (!r.get(out.input) || !r.get(out.first_frame)) return malformed("detection");
  return {};
}

Status decode_detections(std::string_view record, DetectionBatch& out) {
  if (record_kind(record) != RecordKind::detections) return malformed("detection");
  Reader r(record);
  std::uint32_t frames = 0;
  if (!r.get(out.input) || !r.get(out.first_frame) || !r.get(frames)) return malformed("detection");
  // Each frame takes at least 4 bytes: a count beyond what is left is damage, not a size to allocate.
  if (frames > r.left() / 4) return malformed("detection");
  out.frames.assign(frames, {});
  for (Detections& f : out.frames) {
    std::uint32_t count = 0;
    if (!r.get(count) || count > r.left() / (sizeof(BBox) + 12)) return malformed("detection");
    f.resize(count);
    for (Detection& d : f) {
      std::int32_t class_id = 0, keypoints = 0;
      if (!r.get(d.bbox) || !r.get(d.score) || !r.get(class_id) || !r.get(keypoints)) return malformed("detection");
      if (keypoints < 0 || keypoints > Detection::kMaxKeypoints) return malformed("detection");
      d.class_id = class_id;
      d.keypoint_count = keypoints;
      const auto n = static_cast<std::size_t>(keypoints);
      if (!r.get_bytes(d.keypoints.data(), n * sizeof(Point2)) || !r.get_bytes(d.keypoint_scores.data(), n * sizeof(float))) {
        return malformed("detection");
      }
    }
  }
  if (r.left() != 0) return malformed("detection");
  return {};
}

std::string encode_embeddings(std::span<const std::uint64_t> face_ids, std::uint32_t dim, std::span<const float> values) {
  Writer w(RecordKind::embeddings);
  w.put(static_cast<std::uint32_t>(face_ids.size()));
  w.put(dim);
  w.put_bytes(face_ids.data(), face_ids.size_bytes());
  w.put_bytes(values.data(), values.size_bytes());
  return w.take();
}

Status decode_embeddings(std::string_view record, EmbeddingBatch& out) {
  if (record_kind(record) != RecordKind::embeddings) return malformed("embedding");
  Reader r(record);
  std::uint32_t n = 0;
  if (!r.get(n) || !r.get(out.dim)) return malformed("embedding");
  const std::size_t expected = static_cast<std::size_t>(n) * (sizeof(std::uint64_t) + static_cast<std::size_t>(out.dim) * sizeof(float));
  if (out.dim == 0 || r.left() != expected) return malformed("embedding");
  out.face_ids.resize(n);
  out.values.resize(static_cast<std::size_t>(n) * out.dim);
  r.get_bytes(out.face_ids.data(), out.face_ids.size() * sizeof(std::uint64_t));
  r.get_bytes(out.values.data(), out.values.size() * sizeof(float));
  return {};
}

std::string encode_upload(RecordKind kind, std::string_view url, std::string_view md5) {
  Writer w(kind);
  w.put(static_cast<std::uint32_t>(md5.size()));
  w.put_bytes(md5.data(), md5.size());
  w.put_bytes(url.data(), url.size());
  return w.take();
}

Status decode_upload(std::string_view record, UploadRecord& out) {
  const auto kind = record_kind(record);
  if (kind != RecordKind::upload_started && kind != RecordKind::uploaded) return malformed("upload");
  Reader r(record);
  std::uint32_t n = 0;
  if (!r.get(n) || n > r.left()) return malformed("upload");
  out.md5.resize(n);
  r.get_bytes(out.md5.data(), n);
  out.url.resize(r.left());
  r.get_bytes(out.url.data(), out.url.size());
  return {};
}

Result<std::string> file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{ErrorCode::unavailable, path + ": cannot be read"};
  const std::unique_ptr<AVSHA, void (*)(void*)> sha(av_sha_alloc(), av_free);
  if (!sha || av_sha_init(sha.get(), 256) < 0) return Error{ErrorCode::internal, "cannot start a SHA-256"};
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n > 0) av_sha_update(sha.get(), reinterpret_cast<const std::uint8_t*>(buffer.data()), static_cast<std::size_t>(n));
  }
  if (in.bad()) return Error{ErrorCode::unavailable, path + ": read failed"};
  std::uint8_t digest[32];
  av_sha_final(sha.get(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (std::uint8_t b : digest) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 15]);
  }
  return hex;
}

}  // namespace vigil
