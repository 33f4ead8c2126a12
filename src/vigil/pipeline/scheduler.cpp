// The scheduler: each camera's token (one frame of a camera in the pipeline at a time), the
// ready queue of every model stage, and the workers that form batches from them under the
// one CPU budget, with a fair share per camera (concurrency/batch_policy.h decides).
#include <spdlog/spdlog.h>

#include <limits>

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
      while (std::optional<PendingFrame> item = cam->input.take_if(not_due)) {
        track_only(*cam, std::move(item->frame));
      }
    }
    if (ready(*cam)) {
      {
        MutexLock lock(mu);
        if (cam->turn.get(mu).removed || stopping) {
          cam->pending = false;
          return;
        }
        models[cam->model]->queue.get(mu).edge.push(cam, SteadyClock::now());
      }
      work_cv.notify_one();
      return;
    }
    if (cam->best_faces && cam->ended.load() && !has_frame(*cam) && !cam->faces_flushed.load()) flush_best_faces(*cam);
    cam->pending = false;
    // Only a removal or the end of a run waits for a camera to go idle; waking the main
    // thread on every frame would cost a context switch each.
    if (cam->removed_wait.load() || cam->ended.load()) idle_cv.notify_all();
    if (!ready(*cam)) return;  // else a frame arrived after we looked: go again
  }
}

// Hands a result to the sinks and the result hook, and makes it the camera's latest. A sink
// that fails stops the run.
void Engine::Impl::deliver(Camera& cam, const FrameResult& result) {
  if (cam.config.lease_until &&
      SteadyClock::now().time_since_epoch().count() >= cam.config.lease_until->load(std::memory_order_acquire)) {
    cam.fenced.fetch_add(1, std::memory_order_relaxed);  // another node may hold the camera now
    return;
  }
  for (auto& sink : sinks) {
    if (Status st = sink->write(result); !st.ok()) fail(st.error());
  }
  if (hooks.on_result) hooks.on_result(result);
  MutexLock lock(cam.latest_mu);
  cam.latest = result;  // the previous frame goes back to its pool here
}

// A camera's inference finished in `model`: give its token back and let it go on.
void Engine::Impl::finish(const std::shared_ptr<Camera>& cam, Model& model) {
  {
    MutexLock lock(mu);
    cam->turn.get(mu).inflight = false;
    --model.queue.get(mu).inflight;
  }
  cam->pending = false;
  if (cam->removed_wait.load() || cam->ended.load()) idle_cv.notify_all();
  if (has_frame(*cam) || (cam->best_faces && cam->ended.load())) pump(cam);  // a frame, or the end of its tracks
}

void Engine::Impl::pass_on(const std::shared_ptr<Camera>& cam, Model& model, Hold& hold) {
  const bool to_faces = hold == Hold::to_faces;
  hold = Hold::passed;
  if (to_faces) {
    to_face_stage(cam, model);
  } else {
    finish(cam, model);
  }
}

void Engine::Impl::drop(const std::shared_ptr<Camera>& cam, Model& model, Hold& hold) {
  if (hold == Hold::passed) return;
  hold = Hold::passed;
  cam->result.frame.reset();
  cam->face_jobs.clear();
  cam->detected_backlog.clear();
  finish(cam, model);
}

// A worker: serves every model stage from the one pool. It takes the batch of whichever
// stage's batcher says a batch closes now, else sleeps until the earliest deadline or until
// a camera becomes ready. Exceptions from a stage (a sink or hook threw) stop the run, not
// the process; model errors never get here (the stages count them per camera).
void Engine::Impl::worker_loop(int w) {
  std::vector<CameraRef> batch;
  MutexLock lock(mu);
  for (;;) {
    if (stopping) return;
    if (run_waiting_work(w)) continue;
    const SteadyTime now = SteadyClock::now();
    std::optional<SteadyTime> wake;
    Model* chosen = nullptr;
    std::size_t take = 0;
    FairPlan fair;
    for (auto& model : models) {
      Model::Queue& queue = model->queue.get(mu);
      const BatchDecision d = queue.edge.decide(now, idle_workers, queue.cameras, queue.inflight,
                                                static_cast<std::size_t>(workers_count));
      SteadyTime until = d.wait_until;
      if (d.close) {
        fair = queue.queued_cameras > 1 ? fair_plan(*model, now) : FairPlan{};
        if (fair.go) {
          chosen = model.get();
          take = d.take;
          break;
        }
        until = fair.wait_until;
      }
      if (!queue.edge.empty() && (!wake || until < *wake)) wake = until;
    }
    if (!chosen) {
      if (wake) {
        work_cv.wait_until(mu, *wake);
      } else {
        work_cv.wait(mu);
      }
      continue;
    }
    Model::Queue& queue = chosen->queue.get(mu);
    if (queue.queued_cameras > 1) {
      queue.edge.take_if(take, batch, [&](const CameraRef& c) {
        mu.assert_held();  // called by take_if, under this lock
        return c->live || c->fair_position(mu) <= fair.max_position;
      });
    } else {
      queue.edge.take(take, batch);
    }
    for (auto& cam : batch) cam->turn.get(mu).inflight = true;
    queue.inflight += batch.size();
    if (!queue.edge.empty()) work_cv.notify_one();  // another worker can start the next batch
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

// Work that waits for no batch to form, first: a part of another worker's model call, then
// kept faces (nothing else waits for them to be formed). Runs one, unlocked; true if it did.
bool Engine::Impl::run_waiting_work(int w) {
  if (!shared_parts.empty()) {
    SharedPart* part = shared_parts.front();
    shared_parts.pop_front();
    part->state = SharedPart::State::running;
    --idle_workers;
    mu.unlock();
    part->run(w);
    mu.lock();
    ++idle_workers;
    part->state = SharedPart::State::done;
    part_done_cv.notify_all();
    return true;
  }
  FaceWork work = take_face_work();
  if (!work.batch) return false;
  --idle_workers;
  mu.unlock();
  run_face_work(w, work);
  work = {};  // the camera's reference goes unlocked
  mu.lock();
  ++idle_workers;
  return true;
}

void Engine::Impl::run_shared(int worker, std::span<SharedPart* const> parts) {
  if (parts.size() > 1) {
    {
      MutexLock lock(mu);
      for (SharedPart* part : parts.subspan(1)) {
        part->state = SharedPart::State::queued;
        shared_parts.push_back(part);
      }
    }
    work_cv.notify_all();
  }
  parts.front()->run(worker);
  for (SharedPart* part : parts.subspan(1)) {
    {
      MutexLock lock(mu);
      if (part->state != SharedPart::State::queued) {  // a worker took it: wait for it
        while (part->state != SharedPart::State::done) part_done_cv.wait(mu);
        continue;
      }
      shared_parts.erase(std::find(shared_parts.begin(), shared_parts.end(), part));
      part->state = SharedPart::State::running;
    }
    part->run(worker);
    MutexLock lock(mu);
    part->state = SharedPart::State::done;
  }
}

namespace {

// A queued camera may run this many runs of frames (Model::run_frames) ahead of the model's
// slowest busy one...
constexpr std::int64_t kFairLead = 1;
// ...and a batch of cameras that are all ahead waits at most this long for the slowest.
constexpr auto kFairHold = std::chrono::milliseconds(50);

}  // namespace

// Fair share between queued (file) cameras. They are always ready, so FIFO batching keeps
// whichever cameras happen to return together in the same batches, and a pair whose worker
// gets less CPU (decoder threads compete for the same cores) falls behind for good. Instead,
// a camera more than kFairLead runs of frames ahead of the slowest camera that is ready or in
// flight waits for it (up to kFairHold, so a camera slowed by its own decoder cannot hold
// the others back), and the batch takes the cameras that are behind. Live cameras are not
// affected: their slots already give each the newest frame at its own rate.
Engine::Impl::FairPlan Engine::Impl::fair_plan(const Model& model, SteadyTime now) const {
  FairPlan plan;
  const Model::Queue& queue = model.queue.get(mu);
  std::int64_t slowest = std::numeric_limits<std::int64_t>::max();
  std::int64_t ready_min = std::numeric_limits<std::int64_t>::max();
  queue.edge.for_each([&](const CameraRef& c) {
    mu.assert_held();  // called by for_each, under the caller's lock
    if (!c->live) ready_min = std::min(ready_min, c->fair_position(mu));
  });
  for (const auto& c : cameras) {
    if (c->model == model.index && !c->live && c->turn.get(mu).inflight) slowest = std::min(slowest, c->fair_position(mu));
  }
  slowest = std::min(slowest, ready_min);
  const auto lead = kFairLead * static_cast<std::int64_t>(model.run_frames.load(std::memory_order_relaxed));
  plan.max_position = slowest == std::numeric_limits<std::int64_t>::max() ? slowest : slowest + lead;
  bool live_ready = false;
  queue.edge.for_each([&](const CameraRef& c) { live_ready = live_ready || c->live; });
  if (live_ready || ready_min <= plan.max_position || now >= queue.edge.oldest() + kFairHold) {
    if (!(live_ready || ready_min <= plan.max_position)) plan.max_position = std::numeric_limits<std::int64_t>::max();
    return plan;
  }
  plan.go = false;
  plan.wait_until = queue.edge.oldest() + kFairHold;
  return plan;
}

std::int64_t Engine::Impl::slowest_queued_position(std::size_t model) const {
  std::int64_t slowest = std::numeric_limits<std::int64_t>::max();
  for (const auto& c : cameras) {
    if (c->model == model && !c->live && !c->ended.load()) slowest = std::min(slowest, c->fair_position(mu));
  }
  return slowest == std::numeric_limits<std::int64_t>::max() ? 0 : slowest;
}

void Engine::Impl::fail(const Error& error) {
  {
    MutexLock lock(mu);
    if (!first_error) first_error = error;
    stop_requested = true;
  }
  idle_cv.notify_all();
}

}  // namespace vigil
