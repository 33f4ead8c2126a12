// InputScan: the harvest's flow is the live engine's, in offline mode (pipeline/engine.h): one
// input at a time as one file camera (every `stride`-th frame sampled, every sampled frame
// detected in runs of the detector's max_batch and tracked, all tracks ended at a shot cut),
// its faces chosen by the per-track face policy (each track's best, pipeline/best_faces.h) and
// embedded in batches of the embedder's max_batch when their tracks end; the journal answers
// what a killed run detected and embedded (EngineHooks::replay_detections, replay_faces) and
// records the rest (on_detected, on_faces). Each tracked result and each embedded batch is
// handed to the harvest's thread in the order the engine made them through a small queue: a
// worker waits for room (offline, nothing is dropped), and the queue's items are recycled, so
// a frame's result costs no allocation once the run is under way.
//
// Threading: every method on one thread (the harvest's); the engine's threads run inside.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "vigil/concurrency/bounded_queue.h"
#include "vigil/core/frame_result.h"
#include "vigil/core/status.h"
#include "vigil/harvest/harvester.h"
#include "vigil/harvest/journaled_models.h"
#include "vigil/pipeline/engine.h"

namespace vigil {

// What the engine hands over: a tracked frame's result, or a batch of embedded faces.
struct ScanItem {
  bool is_faces = false;
  FrameResult result;
  FaceBatch faces;
};

class InputScan {
 public:
  // The engine on input `input` of `options`: its detector and embedder on `workers` workers
  // (one intra-op thread each) under a budget of `cores`; `face_base` makes the input's face
  // ids harvest-wide (for the journal). Errors: the models', and the input's (not a video, no
  // such file), named.
  struct Journals {
    DetectionJournal& detections;
    EmbeddingJournal& embeddings;
    std::uint64_t face_base = 0;
  };
  static Result<std::unique_ptr<InputScan>> start(const HarvestOptions& options, std::size_t input, int workers, double cores,
                                                  Journals journals);
  ~InputScan();  // stops the engine if it still runs
  InputScan(const InputScan&) = delete;
  InputScan& operator=(const InputScan&) = delete;

  // The input's length as its header says (-1: unknown).
  std::int64_t frame_count() const { return frame_count_; }
  // The next thing the engine made, in order (the last one given goes back to the queue):
  // a sampled frame's result, tracked, or a batch of embedded faces (ids the input's own);
  // false at the end of the input, or after stop().
  bool next(ScanItem& item);
  // Stops early (the harvest failed on its side).
  void stop();
  // Once next() returned false: the engine's error (the input's decoding), a model that
  // failed on frames or faces, or the journal's; and the camera's counts in `status`.
  Status finish(CameraStatus& status);

 private:
  InputScan(DetectionJournal& journal, std::size_t input, std::string path) : journal_(journal), input_(input), path_(std::move(path)) {}
  ScanItem recycled_item();
  void hand_over(const FrameResult& result);
  void hand_over(FaceBatch& faces);

  DetectionJournal& journal_;
  const std::size_t input_;
  const std::string path_;
  BoundedQueue<ScanItem> results_{8, OverflowPolicy::block};         // to the harvest's thread
  BoundedQueue<ScanItem> recycled_{16, OverflowPolicy::drop_newest};  // back to the workers
  std::unique_ptr<Engine> engine_;  // goes before the queues its workers use
  std::thread runner_;
  Status run_status_;  // written by runner_, read after it is joined
  std::int64_t frame_count_ = -1;
};

}  // namespace vigil
