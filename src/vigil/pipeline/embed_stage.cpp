// The face stage: detected frames whose tracks want an embedding wait in the embedder's
// ready queue (still holding their camera's token), are embedded in batches across cameras,
// get identities, and go to the sinks.
#include <spdlog/spdlog.h>

#include "vigil/pipeline/engine_impl.h"

namespace vigil {

using namespace engine_internal;

// A detected frame whose faces are to be embedded: the camera leaves the detector and
// waits in its embedder's ready queue, still holding its token (results stay in order).
void Engine::Impl::to_face_stage(const std::shared_ptr<Camera>& cam, Model& from) {
  Model& to = *models[*cam->faces_model];
  {
    std::lock_guard lock(mu);
    --from.inflight;
    if (!cam->removed && !stopping) {
      to.ready.push_back({cam, SteadyClock::now()});
      work_cv.notify_one();
      return;
    }
    cam->inflight = false;
  }
  cam->result.frame.reset();
  cam->pending = false;
  idle_cv.notify_all();
}

// Embeds the waiting faces of a batch of cameras in one model call (ceil(faces /
// max_batch) when they are many), resolves identities, delivers the results.
void Engine::Impl::run_faces(int w, Model& model, std::vector<ReadyEntry>& batch, std::vector<std::shared_ptr<Camera>>& owners,
               FaceScratch& f) {
  owners.clear();
  for (auto& e : batch) owners.push_back(e.camera);
  if (!governor->admit()) {  // stopping
    for (auto& cam : owners) {
      cam->result.frame.reset();
      finish(cam, model);
    }
    return;
  }
  FaceEmbedder& embedder = *embedders[static_cast<std::size_t>(w)][model.index];
  f.inputs.clear();
  for (auto& cam : owners) {
    for (const FaceJob& job : cam->face_jobs) {
      f.inputs.push_back({&cam->result.frame->image, &cam->result.detections[static_cast<std::size_t>(job.detection)]});
    }
  }
  const SteadyTime start = SteadyClock::now();
  Status status = safe_embed(embedder, f.inputs, f.embeddings, f.qualities);
  model.latency_ms->record(ms_between(start, SteadyClock::now()));
  model.batches.fetch_add(1, std::memory_order_relaxed);
  model.items.fetch_add(f.inputs.size(), std::memory_order_relaxed);
  model.batch_sizes[std::min(f.inputs.size(), model.batch_sizes.size() - 1)].fetch_add(1, std::memory_order_relaxed);
  std::size_t offset = 0;
  for (auto& owner : owners) {
    Camera& cam = *owner;
    FrameResult& r = cam.result;
    const std::size_t n = cam.face_jobs.size();
    if (status.ok()) {
      apply_faces(r, cam.face_jobs, std::span(f.embeddings).subspan(offset, n), std::span(f.qualities).subspan(offset, n),
                  cam.identities.get(), &gallery, clusters.get(), config.identity, f.changed);
      cam.faces_embedded.fetch_add(n, std::memory_order_relaxed);
      publish_identities(cam, r, f.changed);
    } else {  // the result still goes out, without faces; the failure is counted and logged
      r.faces.clear();
      record_stage_error(cam, model, status.error(), r.frame->seq);
    }
    offset += n;
    if (cam.identities) label_tracks(r, *cam.identities);
    deliver(r);
    end_to_end_ms.record(ms_between(r.frame->captured_steady, SteadyClock::now()));
    r.frame.reset();
    cam.face_jobs.clear();
  }
  for (auto& owner : owners) finish(owner, model);
}

void Engine::Impl::publish_identities(Camera& cam, const FrameResult& r, const std::vector<std::size_t>& changed) {
  for (std::size_t i : changed) {
    const FaceResult& face = r.faces[i];
    Event event;
    event.kind = EventKind::identity_matched;
    event.at = r.frame->captured_at;
    event.camera = cam.config.id;
    event.track_id = face.track_id;
    event.frame_seq = r.frame->seq;
    event.bbox = r.detections[static_cast<std::size_t>(face.detection)].bbox;
    event.detail = face.identity.name;
    event.similarity = face.identity.similarity;
    event.margin = face.identity.margin;
    event.known = face.identity.known;
    cam.identities_changed.fetch_add(1, std::memory_order_relaxed);
    bus.publish(std::move(event));
  }
}

Status Engine::Impl::safe_embed(FaceEmbedder& embedder, std::span<const FaceInput> faces, std::vector<Embedding>& out,
                         std::vector<FaceQuality>& qualities) {
  try {
    return embedder.embed(faces, out, qualities);
  } catch (const std::exception& e) {
    return Error{ErrorCode::internal, std::string("exception: ") + e.what()};
  } catch (...) {
    return Error{ErrorCode::internal, "unknown exception"};
  }
}

}  // namespace vigil
