// The harvest's models behind its journal. DetectionJournal stands before the engine's
// detector (its offline hooks): a run the model detected is recorded, and on a resumed run a
// run the killed run recorded is answered from the journal without the model. JournaledModels
// decorates the embedder's ModelPool: a call the embedder ran is recorded when it is taken
// back, and on a resumed run the calls the killed run recorded are answered in the order they
// were made. Both check that a record is for the same frames and faces (decoding, tracking and
// selection are deterministic, so it is unless the journal is another run's). Together with
// harvest/checkpoint.h this is what makes a killed harvest's outputs equal an uninterrupted
// run's.
//
// Threading: DetectionJournal from any thread (the engine's workers); JournaledModels from
// one (the harvest's), as the ModelPool's submit and wait.
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
#include "vigil/harvest/face_tracks.h"
#include "vigil/harvest/journal.h"
#include "vigil/harvest/model_pool.h"

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

// An embedder call on its way: submitted to the pool, or answered from the journal.
struct ModelCall {
  ModelJob job;
  bool replayed = false;        // from the journal: not submitted
  std::vector<KeptFace> faces;  // the faces, in the job's order
};

class JournaledModels {
 public:
  JournaledModels(ModelPool& pool, std::size_t dim) : pool_(pool), dim_(dim) {}

  // The journal to append to, and its records after the header (what to replay; they must
  // outlive this).
  void resume_from(Journal& journal, const std::vector<std::string>& records);

  // call.faces embedded (a journal that does not match fails the call when it is finished).
  void embed(ModelCall& call);
  // Waits for the call; a call the model ran is appended to the journal. Errors: the model's,
  // the journal's, and a replayed record that did not match.
  Status finish(ModelCall& call);
  // Waits for a submitted call without recording it (its memory may go after this).
  void abandon(ModelCall& call) {
    if (!call.replayed) pool_.wait(call.job);
  }

  std::uint64_t resumed_embedder_calls() const { return resumed_embedder_calls_; }

 private:
  Status replay_embeddings(ModelCall& call);

  ModelPool& pool_;
  const std::size_t dim_;
  Journal* journal_ = nullptr;
  std::vector<const std::string*> replay_embeddings_;  // in the order they were made
  std::size_t next_embeddings_ = 0;
  EmbeddingBatch replayed_embeddings_;
  std::vector<std::uint64_t> batch_ids_;
  std::vector<float> embedding_values_;
  Status replay_error_;  // a journal record that does not fit, found when submitting
  std::uint64_t resumed_embedder_calls_ = 0;
};

}  // namespace vigil
