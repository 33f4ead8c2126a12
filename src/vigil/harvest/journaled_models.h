// The harvest's models behind its journal, through the engine's offline hooks.
// DetectionJournal stands before the detector (replay_detections, on_detected) and
// EmbeddingJournal before the embedder of the kept faces (replay_faces, on_faces): what the
// model ran is recorded, and on a resumed run what the killed run recorded is answered from
// the journal without the model. Both check that a record is for the same frames and faces
// (decoding, tracking and selection are deterministic, so it is unless the journal is another
// run's). Together with harvest/checkpoint.h this is what makes a killed harvest's outputs
// equal an uninterrupted run's.
//
// Threading: both from any thread (the engine's workers and token holders).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "vigil/core/mutex.h"
#include "vigil/core/status.h"
#include "vigil/harvest/checkpoint.h"
#include "vigil/harvest/journal.h"
#include "vigil/vision/detector.h"
#include "vigil/vision/face_embedder.h"

namespace vigil {

// DIR/harvest.journal: a new one starts with this run's fingerprint (its header); one left by
// a killed run of the same inputs and settings is opened to be replayed (`records`: its
// records after the header). Errors: the journal's, and failed_precondition when the folder
// holds a harvest of other inputs or settings.
Result<std::unique_ptr<Journal>> open_harvest_journal(const std::string& dir, const std::string& fingerprint,
                                                      std::vector<std::string>& records);

// The detector's runs, by input and first frame.
class DetectionJournal {
 public:
  // The journal to append to, and its records after the header (what to replay; they must
  // outlive this).
  void resume_from(Journal& journal, const std::vector<std::string>& records) EXCLUDES(mu_);
  // A run of `input` (its frames' sequence numbers): true, with one Detections per frame in
  // `out`, when the killed run recorded it.
  bool replay(std::size_t input, std::span<const std::uint64_t> seqs, std::vector<Detections>& out) EXCLUDES(mu_);
  // A run the model detected, appended to the journal.
  void record(std::size_t input, std::span<const std::uint64_t> seqs, std::span<const Detections> found) EXCLUDES(mu_);
  // After an input: the first error (a journal write that failed, a record of other frames,
  // or of this input and never asked for).
  Status finish_input(std::size_t input) EXCLUDES(mu_);

  bool replaying() const { return replaying_.load(std::memory_order_relaxed); }
  std::uint64_t resumed_frames() const { return resumed_frames_.load(std::memory_order_relaxed); }

 private:
  Mutex mu_;
  Journal* journal_ GUARDED_BY(mu_) = nullptr;
  std::map<std::pair<std::size_t, std::uint64_t>, const std::string*> unreplayed_ GUARDED_BY(mu_);  // (input, first frame)
  DetectionBatch batch_ GUARDED_BY(mu_);
  Status error_ GUARDED_BY(mu_);
  std::atomic<bool> replaying_{false};
  std::atomic<std::uint64_t> resumed_frames_{0};
};

// The embedder's batches of kept faces (FaceBatch), by their harvest-wide face ids: asked
// with each batch in the order the engine forms them; the killed run's batches answer the
// same number of first batches, in order.
class EmbeddingJournal {
 public:
  explicit EmbeddingJournal(std::size_t dim) : dim_(dim) {}

  // The journal to append to, and its records after the header (what to replay; they must
  // outlive this).
  void resume_from(Journal& journal, const std::vector<std::string>& records) EXCLUDES(mu_);
  // The next batch of faces (their ids): true when the killed run embedded it, with one
  // embedding per face in `out`, or with `status` set when its record is of other faces.
  bool replay(std::span<const std::uint64_t> face_ids, std::vector<Embedding>& out, Status& status) EXCLUDES(mu_);
  // A batch the model embedded, appended to the journal (a failed write: status()).
  void record(std::span<const std::uint64_t> face_ids, const std::vector<Embedding>& embeddings) EXCLUDES(mu_);
  // The first journal write that failed.
  Status status() const EXCLUDES(mu_);
  std::uint64_t resumed_batches() const { return resumed_batches_.load(std::memory_order_relaxed); }

 private:
  const std::size_t dim_;
  mutable Mutex mu_;
  Journal* journal_ GUARDED_BY(mu_) = nullptr;
  std::vector<const std::string*> unreplayed_ GUARDED_BY(mu_);  // in the order they were made
  std::size_t next_ GUARDED_BY(mu_) = 0;
  EmbeddingBatch batch_ GUARDED_BY(mu_);
  std::vector<float> values_ GUARDED_BY(mu_);
  Status error_ GUARDED_BY(mu_);
  std::atomic<std::uint64_t> resumed_batches_{0};
};

}  // namespace vigil
