// SnapshotCache: JPEG bytes of each camera's newest frame, encoded at most once per
// (camera, frame sequence, quality, width, annotate).
//
// A request for a frame already encoded with the same options is a lookup under one mutex
// and a shared_ptr copy. When many ask at once for a key nobody has encoded yet, the first
// encodes and the rest wait for its bytes (one encode, counted). A newer frame of a camera
// replaces that camera's entries; drop() forgets a camera (disconnected or removed), so a
// stale picture is never served from here.
//
// Threading: all methods from any thread; encoders are per calling thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vigil/core/mutex.h"
#include "vigil/core/frame_result.h"
#include "vigil/core/status.h"
#include "vigil/http/jpeg.h"

namespace vigil {

struct Snapshot {
  std::vector<std::uint8_t> jpeg;
  std::uint64_t seq = 0;       // the frame's sequence number in its camera
  SystemTime captured_at{};    // when the frame was produced
  SteadyTime captured_steady{};
  std::string etag;            // "\"<seq>-<quality>-<width>-<annotate>\"", quoted as HTTP wants
};

class SnapshotCache {
 public:
  // variants: how many option sets one camera's frame keeps (least recently added go first).
  // enabled false: every get() encodes (the encode-per-request baseline for benchmarks).
  explicit SnapshotCache(std::size_t variants = 8, bool enabled = true);

  // The JPEG of result.frame with these options, from the cache or encoded now.
  Result<std::shared_ptr<const Snapshot>> get(const FrameResult& result, const JpegOptions& options);
  // Forgets a camera's entries.
  void drop(const std::string& camera);

  std::uint64_t encodes() const { return encodes_.load(std::memory_order_relaxed); }
  std::uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  std::uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }

  static std::string etag_of(std::uint64_t seq, const JpegOptions& options);

 private:
  struct Entry {
    JpegOptions options;
    bool ready = false;
    std::shared_ptr<const Snapshot> snapshot;  // set when ready (null if the encode failed)
    std::optional<Error> error;
  };
  struct CameraEntries {
    std::uint64_t seq = 0;
    std::vector<std::shared_ptr<Entry>> entries;  // oldest first
  };

  std::size_t variants_;
  bool enabled_;
  mutable Mutex mu_;
  CondVar ready_cv_;  // an entry became ready
  // Entries' fields are guarded by mu_ too.
  std::map<std::string, CameraEntries, std::less<>> cameras_ GUARDED_BY(mu_);
  std::atomic<std::uint64_t> encodes_{0}, hits_{0}, misses_{0};
};

}  // namespace vigil
