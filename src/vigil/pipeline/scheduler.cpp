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
        models[cam->model]->edge.push(cam, SteadyClock::now());
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

// A worker: serves every model stage from the one pool. It takes the batch of whichever
// stage's batcher says a batch closes now, else sleeps until the earliest deadline or until
// a camera becomes ready. Exceptions from a stage (a sink or hook threw) stop the run, not
// the process; model errors never get here (the stages count them per camera).
void Engine::Impl::worker_loop(int w) {
  std::vector<CameraRef> batch;
  std::unique_lock lock(mu);
  for (;;) {
    if (stopping) return;
    const SteadyTime now = SteadyClock::now();
    std::optional<SteadyTime> wake;
    Model* chosen = nullptr;
    std::size_t take = 0;
    for (auto& model : models) {
      const BatchDecision d = model->edge.decide(now, idle_workers, model->cameras, model->inflight,
                                                 static_cast<std::size_t>(workers_count));
      if (d.close) {
        chosen = model.get();
        take = d.take;
        break;
      }
      if (!model->edge.empty() && (!wake || d.wait_until < *wake)) wake = d.wait_until;
    }
    if (!chosen) {
      if (wake) {
        work_cv.wait_until(lock, *wake);
      } else {
        work_cv.wait(lock);
      }
      continue;
    }
    chosen->edge.take(take, batch);
    for (auto& cam : batch) cam->inflight = true;
    chosen->inflight += batch.size();
    if (!chosen->edge.empty()) work_cv.notify_one();  // another worker can start the next batch
    --idle_workers;
    lock.unlock();
    try {
      chosen->stage->run(w, batch);
    } catch (const std::exception& e) {
      fail(Error{ErrorCode::internal, std::string("worker: ") + e.what()});
      chosen->stage->abandon(w);
    } catch (...) {
      fail(Error{ErrorCode::internal, "worker: unknown exception"});
      chosen->stage->abandon(w);
    }
    batch.clear();
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
