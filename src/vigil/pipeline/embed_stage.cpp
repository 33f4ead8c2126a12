// The face stage: detected frames whose tracks want an embedding wait in the embedder's
// ready queue (still holding their camera's token), are embedded in batches across cameras,
// get identities, and go to the sinks.
#include <spdlog/spdlog.h>

#include "vigil/pipeline/engine_impl.h"
#include "vigil/vision/face_align.h"

namespace vigil {

using namespace engine_internal;

// A detected frame whose faces are to be embedded: the camera leaves the detector and
// waits in its embedder's ready queue, still holding its token (results stay in order).
void Engine::Impl::to_face_stage(const std::shared_ptr<Camera>& cam, Model& from) {
  Model& to = *models[*cam->faces_model];
  {
    MutexLock lock(mu);
    --from.queue.get(mu).inflight;
    if (!cam->turn.get(mu).removed && !stopping) {
      to.queue.get(mu).edge.push(cam, SteadyClock::now());
      work_cv.notify_one();
      return;
    }
    cam->turn.get(mu).inflight = false;
  }
  cam->result.frame.reset();
  cam->detected_backlog.clear();
  cam->pending = false;
  idle_cv.notify_all();
}

namespace {

Status safe_embed(FaceEmbedder& embedder, std::span<const FaceInput> faces, std::vector<Embedding>& out,
                  std::vector<FaceQuality>& qualities) {
  return guarded_call([&] { return embedder.embed(faces, out, qualities); });
}

}  // namespace

// The embedder stage of one model: one embedder instance and one set of buffers per worker.
class Engine::Impl::EmbedderStage final : public ModelStage {
 public:
  EmbedderStage(Engine::Impl& engine, Model& model, std::vector<std::unique_ptr<FaceEmbedder>> embedders)
      : engine_(engine), model_(model), embedders_(std::move(embedders)), scratch_(embedders_.size()) {}

  void run(int worker, std::vector<CameraRef>& batch) override;
  void abandon(int worker) override;
  // A camera's detected frame waits here holding the camera's token: one per camera, and
  // the camera's next frame waits for it (a queue of 1: nothing dropped, order kept).
  // Batches faces across frames and cameras (offline: one camera's frame per call); adds
  // faces and identities.
  StageSpec spec(bool) const override {
    StageSpec spec;
    spec.kind = StageKind::embed;
    spec.name = model_.name;
    spec.input = EdgeSpec{EdgeOverflow::queue, 1};
    spec.batch = batch_policy_of(model_.config, engine_.config.offline);
    spec.adds = kFaces | kIdentities;
    return spec;
  }

 private:
  struct Scratch {
    std::vector<CameraRef> owners;
    std::vector<FaceInput> inputs;
    std::vector<Embedding> embeddings;
    std::vector<FaceQuality> qualities;
    std::vector<std::size_t> changed;
    std::vector<Hold> state;  // [owner]: to_faces when a frame of its backlog came here again
  };
  Engine::Impl& engine_;
  Model& model_;
  std::vector<std::unique_ptr<FaceEmbedder>> embedders_;  // [worker]
  std::vector<Scratch> scratch_;                          // [worker]
};

// Embeds the waiting faces of a batch of cameras in one model call (ceil(faces /
// max_batch) when they are many), resolves identities, delivers the results.
void Engine::Impl::EmbedderStage::run(int worker, std::vector<CameraRef>& batch) {
  Engine::Impl& e = engine_;
  Scratch& f = scratch_[static_cast<std::size_t>(worker)];
  f.owners.assign(batch.begin(), batch.end());
  f.state.assign(f.owners.size(), Hold::held);
  if (!e.governor->admit()) {  // stopping
    abandon(worker);
    return;
  }
  FaceEmbedder& embedder = *embedders_[static_cast<std::size_t>(worker)];
  f.inputs.clear();
  for (auto& cam : f.owners) {
    for (const FaceJob& job : cam->face_jobs) {
      f.inputs.push_back({&cam->result.frame->image, &cam->result.detections[static_cast<std::size_t>(job.detection)]});
    }
  }
  const SteadyTime start = SteadyClock::now();
  Status status = safe_embed(embedder, f.inputs, f.embeddings, f.qualities);
  model_.latency_ms->record(ms_between(start, SteadyClock::now()));
  model_.batches.fetch_add(1, std::memory_order_relaxed);
  model_.items.fetch_add(f.inputs.size(), std::memory_order_relaxed);
  model_.batch_sizes[std::min(f.inputs.size(), model_.batch_sizes.size() - 1)].fetch_add(1, std::memory_order_relaxed);
  std::size_t offset = 0;
  for (std::size_t o = 0; o < f.owners.size(); ++o) {
    Camera& cam = *f.owners[o];
    FrameResult& r = cam.result;
    const std::size_t n = cam.face_jobs.size();
    if (status.ok()) {
      apply_faces(r, cam.face_jobs, std::span(f.embeddings).subspan(offset, n), std::span(f.qualities).subspan(offset, n),
                  cam.identities.get(), &e.gallery, e.clusters.get(), e.config.identity, f.changed);
      cam.faces_embedded.fetch_add(n, std::memory_order_relaxed);
      e.publish_identities(cam, r, f.changed);
    } else {  // the result still goes out, without faces; the failure is counted and logged
      r.faces.clear();
      Engine::Impl::record_stage_error(cam, model_, status.error(), r.frame->seq);
    }
    offset += n;
    if (cam.identities) label_tracks(r, *cam.identities);
    e.deliver(cam, r);
    e.end_to_end_ms->record(ms_between(r.frame->captured_steady, SteadyClock::now()));
    r.frame.reset();
    cam.face_jobs.clear();
    if (e.track_backlog(cam)) f.state[o] = Hold::to_faces;  // the frames detected after it, in order
  }
  for (std::size_t o = 0; o < f.owners.size(); ++o) e.pass_on(f.owners[o], model_, f.state[o]);
  f.owners.clear();
}

// Stopping, or a sink or hook threw in the middle of run(): the waiting results are dropped
// and the tokens this worker holds go back.
void Engine::Impl::EmbedderStage::abandon(int worker) {
  Scratch& f = scratch_[static_cast<std::size_t>(worker)];
  for (std::size_t o = 0; o < f.owners.size(); ++o) engine_.drop(f.owners[o], model_, f.state[o]);
  f.owners.clear();
}

std::unique_ptr<ModelStage> Engine::Impl::make_embedder_stage(Model& model,
                                                              std::vector<std::unique_ptr<FaceEmbedder>> embedders) {
  return std::make_unique<EmbedderStage>(*this, model, std::move(embedders));
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
    // The face it came from, small, for the event store and the wall (one encode per
    // identity change, not per frame).
    auto jpeg = std::make_shared<std::vector<std::uint8_t>>();
    if (face_thumbnail_jpeg(r.frame->image, event.bbox, 112, *jpeg).ok()) event.face_jpeg = std::move(jpeg);
    event.similarity = face.identity.similarity;
    event.margin = face.identity.margin;
    event.known = face.identity.known;
    cam.identities_changed.fetch_add(1, std::memory_order_relaxed);
    bus.publish(std::move(event));
  }
}

}  // namespace vigil
