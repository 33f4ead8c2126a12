// JournaledModels: the harvest's models behind its journal (a decorator of the ModelPool).
// A call the models run is recorded when it is taken back; on a resumed run, the calls the
// killed run recorded are answered from the journal, in the order they were made, without
// running the models, and checked to be for the same frames and faces (decoding, tracking and
// selection are deterministic, so they are unless the journal is another run's). Together
// with harvest/checkpoint.h this is what makes a killed harvest's outputs equal an
// uninterrupted run's.
//
// Threading: one thread (the harvest's), as the ModelPool's submit and wait.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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

// A model call on its way: submitted to the pool, or answered from the journal.
struct ModelCall {
  ModelJob job;
  bool replayed = false;        // from the journal: not submitted
  std::size_t input = 0;        // detect: the input its frames are from
  std::vector<KeptFace> faces;  // embed: the faces, in the job's order
};

class JournaledModels {
 public:
  JournaledModels(ModelPool& pool, std::size_t dim) : pool_(pool), dim_(dim) {}

  // The journal to append to, and its records after the header (what to replay; they must
  // outlive this).
  void resume_from(Journal& journal, const std::vector<std::string>& records);

  // job.frames of call.input detected. Errors: data_loss when the journal's next detections
  // are for other frames.
  Status detect(ModelCall& call);
  // call.faces embedded (a journal that does not match fails the call when it is finished).
  void embed(ModelCall& call);
  // Waits for the call; a call the models ran is appended to the journal. Errors: the model's,
  // the journal's, and a replayed record that did not match.
  Status finish(ModelCall& call);
  // Waits for a submitted call without recording it (its memory may go after this).
  void abandon(ModelCall& call) {
    if (!call.replayed) pool_.wait(call.job);
  }

  bool replaying() const { return next_detections_ < replay_detections_.size(); }
  std::uint64_t resumed_frames() const { return resumed_frames_; }
  std::uint64_t resumed_embedder_calls() const { return resumed_embedder_calls_; }

 private:
  Status replay_embeddings(ModelCall& call);

  ModelPool& pool_;
  const std::size_t dim_;
  Journal* journal_ = nullptr;
  std::vector<const std::string*> replay_detections_, replay_embeddings_;  // in the order they were made
  std::size_t next_detections_ = 0, next_embeddings_ = 0;
  DetectionBatch replayed_detections_;
  EmbeddingBatch replayed_embeddings_;
  std::vector<std::uint64_t> batch_ids_;
  std::vector<float> embedding_values_;
  Status replay_error_;  // a journal record that does not fit, found when submitting
  std::uint64_t resumed_frames_ = 0, resumed_embedder_calls_ = 0;
};

}  // namespace vigil
