#include "vigil/http/snapshot_cache.h"

#include <algorithm>

namespace vigil {

namespace {

bool same(const JpegOptions& a, const JpegOptions& b) {
  return a.quality == b.quality && a.width == b.width && a.annotate == b.annotate;
}

Result<std::shared_ptr<const Snapshot>> encode(const FrameResult& result, const JpegOptions& options) {
  thread_local JpegEncoder encoder;
  auto snapshot = std::make_shared<Snapshot>();
  VIGIL_RETURN_IF_ERROR(encoder.encode(result, options, snapshot->jpeg));
  snapshot->seq = result.frame->seq;
  snapshot->captured_at = result.frame->captured_at;
  snapshot->captured_steady = result.frame->captured_steady;
  snapshot->etag = SnapshotCache::etag_of(result.frame->seq, options);
  return std::shared_ptr<const Snapshot>(std::move(snapshot));
}

}  // namespace

SnapshotCache::SnapshotCache(std::size_t variants, bool enabled)
    : variants_(std::max<std::size_t>(1, variants)), enabled_(enabled) {}

std::string SnapshotCache::etag_of(std::uint64_t seq, const JpegOptions& options) {
  return "\"" + std::to_string(seq) + "-" + std::to_string(options.quality) + "-" + std::to_string(options.width) + "-" +
         (options.annotate ? "1" : "0") + "\"";
}

Result<std::shared_ptr<const Snapshot>> SnapshotCache::get(const FrameResult& result, const JpegOptions& options) {
  if (!result.frame || !result.frame->camera) return Error{ErrorCode::invalid_argument, "snapshot: no frame"};
  if (!enabled_) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    encodes_.fetch_add(1, std::memory_order_relaxed);
    return encode(result, options);
  }
  const std::string& camera = *result.frame->camera;
  const std::uint64_t seq = result.frame->seq;
  std::shared_ptr<Entry> entry;
  {
    MutexLock lock(mu_);
    CameraEntries& c = cameras_[camera];
    if (!c.entries.empty() && seq < c.seq) {
      // An older frame than the cached one (a reader that looked before a newer result):
      // encode it for this request only.
      lock.unlock();
      misses_.fetch_add(1, std::memory_order_relaxed);
      encodes_.fetch_add(1, std::memory_order_relaxed);
      return encode(result, options);
    }
    if (seq != c.seq || c.entries.empty()) {
      c.seq = seq;
      c.entries.clear();
    }
    for (const auto& e : c.entries) {
      if (!same(e->options, options)) continue;
      // Present: ready, or being encoded by another request (wait for it).
      std::shared_ptr<Entry> found = e;
      while (!found->ready) ready_cv_.wait(mu_);
      hits_.fetch_add(1, std::memory_order_relaxed);
      if (found->error) return *found->error;
      return found->snapshot;
    }
    entry = std::make_shared<Entry>();
    entry->options = options;
    if (c.entries.size() >= variants_) c.entries.erase(c.entries.begin());
    c.entries.push_back(entry);
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  encodes_.fetch_add(1, std::memory_order_relaxed);
  auto encoded = encode(result, options);
  {
    MutexLock lock(mu_);
    entry->ready = true;
    if (encoded.ok()) {
      entry->snapshot = *encoded;
    } else {
      entry->error = encoded.error();
      // A failed encode is not cached: the next request tries again.
      auto it = cameras_.find(camera);
      if (it != cameras_.end()) std::erase(it->second.entries, entry);
    }
  }
  ready_cv_.notify_all();
  return encoded;
}

void SnapshotCache::drop(const std::string& camera) {
  MutexLock lock(mu_);
  cameras_.erase(camera);
}

}  // namespace vigil
