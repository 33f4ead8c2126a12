// InputScan: the harvest's decoder, detector and tracker are the live engine's, in offline
// mode (pipeline/engine.h): one input at a time as one file camera (every `stride`-th frame
// sampled, every sampled frame detected in runs of the detector's max_batch and tracked, all
// tracks ended at a shot cut), the journal answering the runs a killed run detected
// (EngineHooks::replay_detections) and recording the others (on_detected). Each tracked
// result is handed to the harvest's thread in frame order through a small queue: a worker
// waits for room (offline, nothing is dropped), and the queue's results are recycled, so a
// frame's result costs no allocation once the run is under way.
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

class InputScan {
 public:
  // The engine on input `input` of `options`: its detector on `workers` workers (one intra-op
  // thread each) under a budget of `cores`. Errors: the detector's, and the input's (not a
  // video, no such file), named.
  static Result<std::unique_ptr<InputScan>> start(const HarvestOptions& options, std::size_t input, int workers, double cores,
                                                  DetectionJournal& journal);
  ~InputScan();  // stops the engine if it still runs
  InputScan(const InputScan&) = delete;
  InputScan& operator=(const InputScan&) = delete;

  // The input's length as its header says (-1: unknown).
  std::int64_t frame_count() const { return frame_count_; }
  // The next sampled frame's result, tracked, in frame order (the last one given goes back to
  // the queue); false at the end of the input, or after stop().
  bool next(FrameResult& result);
  // Stops early (the harvest failed on its side).
  void stop();
  // Once next() returned false: the engine's error (the input's decoding), a detector that
  // failed on frames, or the journal's; and the camera's counts in `status`.
  Status finish(CameraStatus& status);

 private:
  InputScan(DetectionJournal& journal, std::size_t input, std::string path) : journal_(journal), input_(input), path_(std::move(path)) {}
  void hand_over(const FrameResult& result);

  DetectionJournal& journal_;
  const std::size_t input_;
  const std::string path_;
  BoundedQueue<FrameResult> results_{8, OverflowPolicy::block};         // to the harvest's thread
  BoundedQueue<FrameResult> recycled_{16, OverflowPolicy::drop_newest};  // back to the workers
  std::unique_ptr<Engine> engine_;  // goes before the queues its workers use
  std::thread runner_;
  Status run_status_;  // written by runner_, read after it is joined
  std::int64_t frame_count_ = -1;
};

}  // namespace vigil
