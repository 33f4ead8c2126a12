// ModelPool: the harvest's embedder calls (a batch of aligned faces to embed) run on worker
// threads, each with its own embedder, while the harvest's thread aligns and selects faces.
// Jobs come back in the order they were submitted, so what the harvest does with them does
// not depend on which worker ran them or when. (Detection runs in the engine: harvester.h.)
//
// The workers share the CPU budget: each call first waits for CpuGovernor::admit(), and each
// worker's model runs on one intra-op thread.
//
// Threading: submit(), wait() and the destructor from one thread (the harvest's); jobs are
// owned by the caller and must outlive their wait().
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "vigil/concurrency/cpu_governor.h"
#include "vigil/core/frame.h"
#include "vigil/core/mutex.h"
#include "vigil/core/status.h"
#include "vigil/vision/face_embedder.h"

namespace vigil {

struct ModelJob {
  // `count` aligned chips in (RGB 0..255 floats, NHWC), L2-normalised embeddings out
  std::vector<float> chips;
  std::size_t count = 0;
  std::vector<Embedding> embeddings;
  Status status;  // the model's error, if any
 private:
  friend class ModelPool;
  bool done_ = false;  // guarded by the pool's mutex (ModelPool::mu_)
};

class ModelPool {
 public:
  // One worker per embedder (at least one).
  ModelPool(std::vector<std::unique_ptr<FaceEmbedder>> embedders, CpuGovernor& governor);
  ~ModelPool();  // stops the workers (a job being run finishes first)
  ModelPool(const ModelPool&) = delete;
  ModelPool& operator=(const ModelPool&) = delete;

  void submit(ModelJob& job) EXCLUDES(mu_);
  // Blocks until `job` has run.
  void wait(ModelJob& job) EXCLUDES(mu_);
  std::size_t workers() const { return threads_.size(); }
  // The first worker's embedder (for its sizes; not to be called while jobs run).
  FaceEmbedder& embedder() { return *embedders_.front(); }

 private:
  void work(std::size_t worker);

  std::vector<std::unique_ptr<FaceEmbedder>> embedders_;
  CpuGovernor& governor_;
  Mutex mu_;
  CondVar queued_cv_, done_cv_;
  std::deque<ModelJob*> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace vigil
