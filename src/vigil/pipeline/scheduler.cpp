// The scheduler: each camera's token (one frame of a camera in the pipeline at a time), the
// ready queue of every model stage, and the workers that form batches from them under the
// one CPU budget, with a fair share per camera (concurrency/batch_policy.h decides).
#include <spdlog/spdlog.h>

#include "vigil/pipeline/engine_impl.h"

namespace vigil {

using namespace engine_internal;

// Runs the camera's pipeline as far as it goes without the detector, on the calling thread
// (capture, timer or worker): takes the token, runs track-only steps for frames not due for
// detection, in order, then either hands the token to the model's ready queue (a due frame
// waits) or gives it back. A thread that finds the token taken returns at once: the holder
// will see the new frame.
void Engine::Impl::pump(const std::shared_ptr<Camera>& cam) {
  for (;;) {
    if (cam->pending.exchange(true)) return;
    if (cam->tracker) {
      while (std::optional<PendingFrame> item = cam->live ? cam->slot.take_if(not_due) : cam->queue.try_pop_if(not_due)) {
        track_only(*cam, std::move(item->frame));
      }
    }
    if (has_frame(*cam)) {
      {
        std::lock_guard lock(mu);
        if (cam->removed || stopping) {
          cam->pending = false;
          return;
        }
        models[cam->model]->ready.push_back({cam, SteadyClock::now()});
      }
      work_cv.notify_one();
      return;
    }
    cam->pending = false;
    // Only a removal or the end of a run waits for a camera to go idle; waking the main
    // thread on every frame would cost a context switch each.
    if (cam->removed_wait.load() || cam->ended.load()) idle_cv.notify_all();
    if (!has_frame(*cam)) return;  // else a frame arrived after we looked: go again
  }
}

// Hands a result to the sinks and the result hook. A sink that fails stops the run.
void Engine::Impl::deliver(const FrameResult& result) {
  for (auto& sink : sinks) {
    if (Status st = sink->write(result); !st.ok()) fail(st.error());
  }
  if (hooks.on_result) hooks.on_result(result);
}

// A camera's inference finished in `model`: give its token back and let it go on.
void Engine::Impl::finish(const std::shared_ptr<Camera>& cam, Model& model) {
  {
    std::lock_guard lock(mu);
    cam->inflight = false;
    --model.inflight;
  }
  cam->pending = false;
  if (cam->removed_wait.load() || cam->ended.load()) idle_cv.notify_all();
  if (has_frame(*cam)) pump(cam);
}

void Engine::Impl::worker_loop(int w) {
  std::vector<ReadyEntry> batch;
  std::vector<FrameRef> frames;
  std::vector<std::shared_ptr<Camera>> owners;
  std::vector<const Image*> images;
  std::vector<Detections> results;
  std::vector<char> handed;  // owners[i] went on to its face stage
  FaceScratch face_scratch;
  std::unique_lock lock(mu);
  for (;;) {
    if (stopping) return;
    // Pick the model whose batch should close now; else wait for the earliest deadline.
    const SteadyTime now = SteadyClock::now();
    std::optional<SteadyTime> wake;
    Model* chosen = nullptr;
    std::size_t take = 0;
    for (auto& model : models) {
      if (model->ready.empty()) continue;
      const std::size_t busy = model->ready.size() + model->inflight;
      const std::size_t could_join = model->cameras > busy ? model->cameras - busy : 0;
      const auto worker_count = static_cast<std::size_t>(workers_count);
      const std::size_t fair_share = (model->cameras + worker_count - 1) / worker_count;
      const BatchDecision d = decide_batch(model->policy, model->ready.size(), model->ready.front().since, now,
                                           idle_workers, could_join, std::max<std::size_t>(1, fair_share));
      if (d.close) {
        chosen = model.get();
        take = d.take;
        break;
      }
      if (!wake || d.wait_until < *wake) wake = d.wait_until;
    }
    if (!chosen) {
      if (wake) {
        work_cv.wait_until(lock, *wake);
      } else {
        work_cv.wait(lock);
      }
      continue;
    }
    batch.clear();
    for (std::size_t i = 0; i < take; ++i) {
      batch.push_back(std::move(chosen->ready.front()));
      chosen->ready.pop_front();
      batch.back().camera->inflight = true;
    }
    chosen->inflight += take;
    if (!chosen->ready.empty()) work_cv.notify_one();  // another worker can start the next batch
    --idle_workers;
    lock.unlock();
    try {
      if (chosen->detector) {
        run_batch(w, *chosen, batch, frames, owners, images, results, handed);
      } else {
        handed.clear();
        run_faces(w, *chosen, batch, owners, face_scratch);
      }
    } catch (const std::exception& e) {  // a sink or hook threw: stop the run, not the process
      fail(Error{ErrorCode::internal, std::string("worker: ") + e.what()});
      frames.clear();
      for (std::size_t i = 0; i < owners.size(); ++i) {
        if (i < handed.size() && handed[i]) continue;
        owners[i]->result.frame.reset();  // this worker holds the camera's token
        finish(owners[i], *chosen);
      }
    }
    lock.lock();
    ++idle_workers;
  }
}

void Engine::Impl::fail(const Error& error) {
  {
    std::lock_guard lock(mu);
    if (!first_error) first_error = error;
    stop_requested = true;
  }
  idle_cv.notify_all();
}

}  // namespace vigil
