// InputScan: the harvest's flow is the live engine's, in offline mode (pipeline/engine.h), one
// engine for the whole harvest (its models load once): one input at a time as its one file
// camera, added when the last one was finished and removed (every `stride`-th frame sampled,
// every sampled frame detected in runs of the detector's max_batch and tracked, all tracks
// ended at a shot cut), its faces chosen by the per-track face policy (each track's best, pipeline/best_faces.h) and
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
#include <atomic>
#include <thread>

#include "vigil/concurrency/bounded_queue.h"
#include "vigil/core/frame_result.h"
#include "vigil/core/status.h"
#include "vigil/harvest/harvester.h"
#include "vigil/harvest/journaled_models.h"
#include "vigil/pipeline/engine.h"

namespace vigil {

// What the engine hands over: a tracked frame's result, or a batch of embedded faces; or the
// end of the input.
struct ScanItem {
  bool end = false;
  bool is_faces = false;
  FrameResult result;
  FaceBatch faces;
};

class InputScan {
 public:
  // The engine for `options`: its detector and embedder on `workers` workers (one intra-op
  // thread each) under a budget of `cores`, started with no camera, its models behind the
  // journals. Errors: the models'.
  static Result<std::unique_ptr<InputScan>> start(const HarvestOptions& options, int workers, double cores,
                                                  DetectionJournal& detections, EmbeddingJournal& embeddings);
  ~InputScan();  // stops the engine
  InputScan(const InputScan&) = delete;
  InputScan& operator=(const InputScan&) = delete;

  // Input `input` as the engine's one camera (after the last input's finish()); `face_base`
  // makes its face ids harvest-wide (for the journal). Errors: the input's (not a video, no
  // such file), named.
  Status begin(std::size_t input, std::uint64_t face_base);
  // The input's length as its header says (-1: unknown).
  std::int64_t frame_count() const { return frame_count_; }
  // The next thing the engine made, in order (the last one given goes back to the queue):
  // a sampled frame's result, tracked, or a batch of embedded faces (ids the input's own);
  // false at the end of the input, or after stop().
  bool next(ScanItem& item);
  // Stops early (the harvest failed on its side).
  void stop();
  // Once next() returned false: the input's error (its decoding), a model that failed on
  // frames or faces, or the journal's; and the camera's counts in `status`.
  Status finish(CameraStatus& status);

 private:
  InputScan(const HarvestOptions& options, DetectionJournal& journal) : options_(options), journal_(journal) {}
  ScanItem recycled_item();
  void hand_over(const FrameResult& result);
  void hand_over(FaceBatch& faces);

  const HarvestOptions& options_;
  DetectionJournal& journal_;
  // The input running now and its first face id's offset: set before its camera is added,
  // read by the engine's threads in its hooks.
  std::atomic<std::size_t> input_{0};
  std::atomic<std::uint64_t> face_base_{0};
  std::string camera_;  // the running input's camera id
  BoundedQueue<ScanItem> results_{8, OverflowPolicy::block};         // to the harvest's thread
  BoundedQueue<ScanItem> recycled_{16, OverflowPolicy::drop_newest};  // back to the workers
  std::unique_ptr<Engine> engine_;  // goes before the queues its workers use
  std::thread waiter_;              // waits for the input's end (Engine::finish_camera)
  Result<CameraStatus> ended_ = CameraStatus{};  // written by waiter_, read after it is joined
  std::int64_t frame_count_ = -1;
};

}  // namespace vigil
