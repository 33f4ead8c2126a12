// Capture: a reader thread per file or stream camera (with the reconnect policy: doubling
// backoff with jitter, reset once a frame arrives), timer ticks for live synthetic cameras
// (with their scheduled faults), and the hand-off of decoded frames to the scheduler.
#include <spdlog/spdlog.h>

#include "vigil/pipeline/engine_impl.h"

namespace vigil {

using namespace engine_internal;

// Hands a decoded frame to the scheduler according to the camera's kind.
// Frames not due for detection go on only when the camera tracks (to get predicted tracks).
void Engine::Impl::hand_off(const std::shared_ptr<Camera>& cam, FrameRef frame) {
  cam->decoded.fetch_add(1, std::memory_order_relaxed);
  const bool due = cam->live ? cam->cadence.due_live(*frame) : cam->cadence.due_queued(*frame);
  if (!due) {
    cam->skipped.fetch_add(1, std::memory_order_relaxed);
    if (!cam->tracker) return;
  }
  // A newest-wins edge never waits; a queue edge waits for room (nothing is lost).
  if (cam->input.push({std::move(frame), due}) == PushResult::closed) {  // stopping: not a frame of the run
    cam->decoded.fetch_sub(1, std::memory_order_relaxed);
    if (!due) cam->skipped.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  if (due && config.offline) cam->queued_due.fetch_add(1);  // offline cameras are never live
  pump(cam);
}

void Engine::Impl::end_capture(const std::shared_ptr<Camera>& cam, CameraState final_state, std::optional<Error> fatal) {
  if (fatal) {
    cam->record_error(*fatal);
    MutexLock lock(cam->info_mu);
    cam->fatal = fatal;
  }
  cam->set_state(final_state);
  cam->ended_ns = to_ns(SteadyClock::now());
  cam->ended = true;
  idle_cv.notify_all();
  if (config.offline || cam->best_faces) pump(cam);  // the rest of the file is its last run; its tracks end
}

// Reader thread of a file, stream or unpaced synthetic camera.
void Engine::Impl::capture_loop(const std::shared_ptr<Camera>& cam) {
  const SourceConfig& sc = cam->config.source;
  const bool may_reconnect = sc.type == SourceType::stream && sc.reconnect;
  ReconnectBackoff backoff(std::chrono::milliseconds(sc.reconnect_initial_ms), std::chrono::milliseconds(sc.reconnect_max_ms),
                           static_cast<std::uint32_t>(cam->rng()));
  while (!cam->stopping) {
    Source* source = nullptr;
    {
      MutexLock lock(cam->source_mu);
      source = cam->source.get();
    }
    if (!source) {
      cam->set_state(CameraState::connecting);
      auto opened = open_source(sc, cam->config.id);
      if (!opened.ok()) {
        cam->record_error(opened.error());
        if (!may_reconnect || !is_retryable(opened.error().code)) {
          end_capture(cam, CameraState::failed, opened.error());
          return;
        }
        cam->reconnects.fetch_add(1, std::memory_order_relaxed);
        if (!cam->reconnect_wait.wait_until(SteadyClock::now() + backoff.next())) break;
        continue;
      }
      MutexLock lock(cam->source_mu);
      if (cam->stopping) break;
      cam->source = std::move(opened).value();
      source = cam->source.get();
    }
    auto frame = source->read();
    if (!frame.ok()) {
      if (frame.error().code == ErrorCode::cancelled && cam->stopping) break;
      cam->decode_errors.fetch_add(1, std::memory_order_relaxed);
      cam->record_error(frame.error());
      if (may_reconnect && frame.error().code != ErrorCode::invalid_argument) {
        cam->set_state(CameraState::stalled);
        std::unique_ptr<Source> dead;
        {
          MutexLock lock(cam->source_mu);
          dead = std::move(cam->source);  // closed outside the lock
        }
        continue;  // reconnect
      }
      end_capture(cam, CameraState::failed, frame.error());
      return;
    }
    if (!*frame) {  // end of stream
      if (may_reconnect) {
        cam->set_state(CameraState::stalled);
        MutexLock lock(cam->source_mu);
        cam->source.reset();
        continue;
      }
      cam->input.close();
      end_capture(cam, CameraState::stopped, std::nullopt);
      return;
    }
    if (cam->state() != CameraState::live) {
      cam->set_state(CameraState::live);  // live once a decoded frame arrives
      backoff.reset();
    }
    if (sc.stride > 1 && (*frame)->seq % static_cast<std::uint64_t>(sc.stride) != 0) {  // not sampled
      cam->decoded.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    hand_off(cam, std::move(frame).value());
  }
  cam->input.close();
  end_capture(cam, CameraState::stopped, std::nullopt);
}

// One tick of a live synthetic camera, on a shared timer thread.
std::optional<SteadyTime> Engine::Impl::synthetic_tick(const std::shared_ptr<Camera>& cam, SteadyTime due) {
  if (cam->stopping) return std::nullopt;
  const double interval = 1.0 / cam->config.source.fps;
  const SteadyTime now = SteadyClock::now();
  const double t = std::chrono::duration<double>(due - cam->timeline_start).count();
  // Frame index on the camera's own timeline; a late tick skips to the current frame.
  const auto index = static_cast<std::uint64_t>(std::llround(t / interval));
  const FaultSchedule::Phase phase = cam->faults->phase_at(t);
  if (phase == FaultSchedule::Phase::disconnected) {
    cam->set_state(CameraState::connecting);
  } else if (phase == FaultSchedule::Phase::stalled) {
    const double silent_ms = std::chrono::duration<double, std::milli>(now - cam->last_frame_at).count();
    if (silent_ms >= cam->config.source.read_timeout_ms) cam->set_state(CameraState::stalled);
  } else if (cam->faults->corrupt_frame(index, interval)) {
    cam->decode_errors.fetch_add(1, std::memory_order_relaxed);
  } else {
    auto frame = cam->synthetic->render(index);
    if (!frame.ok()) {
      end_capture(cam, CameraState::failed, frame.error());
      return std::nullopt;
    }
    cam->last_frame_at = SteadyClock::now();
    if (cam->state() != CameraState::live) {
      if (cam->state() == CameraState::stalled) cam->set_state(CameraState::connecting);
      if (cam->ever_live) cam->reconnects.fetch_add(1, std::memory_order_relaxed);
      cam->ever_live = true;
      cam->set_state(CameraState::live);
    }
    hand_off(cam, std::move(frame).value());
  }
  // Next tick on the grid after now (skipping ticks we are too late for), plus jitter.
  auto next_index = index + 1;
  const double now_t = std::chrono::duration<double>(SteadyClock::now() - cam->timeline_start).count();
  if (static_cast<double>(next_index) * interval < now_t - interval) {
    next_index = static_cast<std::uint64_t>(now_t / interval) + 1;
  }
  double next_t = static_cast<double>(next_index) * interval;
  const double jitter_ms = cam->faults->config().jitter_ms;
  if (jitter_ms > 0) {
    std::uniform_real_distribution<double> j(-jitter_ms, jitter_ms);
    next_t += std::clamp(j(cam->rng), -0.45 * interval * 1000, 0.45 * interval * 1000) / 1000.0;
  }
  return cam->timeline_start + std::chrono::duration_cast<SteadyTime::duration>(std::chrono::duration<double>(next_t));
}

void Engine::Impl::start_capture(const std::shared_ptr<Camera>& cam) {
  MutexLock lifecycle(cam->lifecycle_mu);
  if (cam->stopping) return;  // stopped before it started (engine stopping meanwhile)
  cam->started_ns = to_ns(SteadyClock::now());
  if (cam->synthetic) {
    cam->timeline_start = SteadyClock::now();
    cam->last_frame_at = cam->timeline_start;
    cam->timer = timers->schedule(cam->timeline_start, [this, cam](SteadyTime due) { return synthetic_tick(cam, due); });
    return;
  }
  cam->thread = std::thread([this, cam] { capture_loop(cam); });
}

void Engine::Impl::stop_capture(Camera& cam) {
  MutexLock lifecycle(cam.lifecycle_mu);
  cam.stopping = true;
  cam.reconnect_wait.interrupt();
  {
    MutexLock lock(cam.source_mu);
    if (cam.source) cam.source->interrupt();
  }
  cam.input.close();
  if (cam.timer) {
    timers->cancel(*cam.timer);
    cam.timer.reset();
  }
  if (cam.thread.joinable()) cam.thread.join();
  if (!cam.ended) {
    cam.set_state(CameraState::stopped);
    cam.ended_ns = to_ns(SteadyClock::now());
    cam.ended = true;
  }
}

}  // namespace vigil
