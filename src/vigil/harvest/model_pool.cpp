#include "vigil/harvest/model_pool.h"

namespace vigil {

ModelPool::ModelPool(std::vector<std::unique_ptr<FaceEmbedder>> embedders, CpuGovernor& governor)
    : embedders_(std::move(embedders)), governor_(governor) {
  for (std::size_t i = 0; i < embedders_.size(); ++i) threads_.emplace_back([this, i] { work(i); });
}

ModelPool::~ModelPool() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  queued_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ModelPool::submit(ModelJob& job) {
  {
    MutexLock lock(mu_);
    job.done_ = false;
    queue_.push_back(&job);
  }
  queued_cv_.notify_one();
}

void ModelPool::wait(ModelJob& job) {
  MutexLock lock(mu_);
  while (!job.done_) done_cv_.wait(mu_);
}

void ModelPool::work(std::size_t worker) {
  FaceEmbedder& embedder = *embedders_[worker];
  for (;;) {
    ModelJob* job = nullptr;
    {
      MutexLock lock(mu_);
      while (!stopping_ && queue_.empty()) queued_cv_.wait(mu_);
      if (queue_.empty()) return;  // stopping, nothing left
      job = queue_.front();
      queue_.pop_front();
    }
    governor_.admit();
    job->embeddings.clear();
    job->status = guarded_call([&] { return embedder.embed_chips(job->chips, job->count, job->embeddings); });
    for (Embedding& e : job->embeddings) l2_normalise(e);
    {
      MutexLock lock(mu_);
      job->done_ = true;
    }
    done_cv_.notify_all();
  }
}

}  // namespace vigil
