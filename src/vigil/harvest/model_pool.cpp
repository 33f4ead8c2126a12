#include "vigil/harvest/model_pool.h"

namespace vigil {

ModelPool::ModelPool(std::vector<std::unique_ptr<BlazeFace>> detectors, std::vector<std::unique_ptr<FaceEmbedder>> embedders,
                     CpuGovernor& governor)
    : detectors_(std::move(detectors)), embedders_(std::move(embedders)), governor_(governor) {
  for (std::size_t i = 0; i < detectors_.size() && i < embedders_.size(); ++i) threads_.emplace_back([this, i] { work(i); });
}

ModelPool::~ModelPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  queued_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ModelPool::submit(ModelJob& job) {
  {
    std::lock_guard lock(mu_);
    job.done_ = false;
    queue_.push_back(&job);
  }
  queued_cv_.notify_one();
}

void ModelPool::wait(ModelJob& job) {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return job.done_; });
}

void ModelPool::work(std::size_t worker) {
  BlazeFace& detector = *detectors_[worker];
  FaceEmbedder& embedder = *embedders_[worker];
  std::vector<const Image*> images;
  for (;;) {
    ModelJob* job = nullptr;
    {
      std::unique_lock lock(mu_);
      queued_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      job = queue_.front();
      queue_.pop_front();
    }
    governor_.admit();
    if (job->kind == ModelJob::Kind::detect) {
      images.clear();
      for (const FrameRef& f : job->frames) images.push_back(&f->image);
      job->status = detector.detect(images, job->detections);
    } else {
      job->embeddings.clear();
      job->status = embedder.embed_chips(job->chips, job->count, job->embeddings);
      for (Embedding& e : job->embeddings) l2_normalise(e);
    }
    {
      std::lock_guard lock(mu_);
      job->done_ = true;
    }
    done_cv_.notify_all();
  }
}

}  // namespace vigil
