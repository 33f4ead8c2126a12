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
  void embed_kept(int worker, FaceBatch& batch) override;
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
    std::vector<float> chips;  // embed_kept's input
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
  model_.count_call(f.inputs.size(), start);
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

// Kept faces' chips (aligned when they were kept) in one model call, L2-normalised.
void Engine::Impl::EmbedderStage::embed_kept(int worker, FaceBatch& batch) {
  Scratch& f = scratch_[static_cast<std::size_t>(worker)];
  const std::size_t n = batch.faces.size();
  const std::size_t values = n > 0 ? batch.faces.front().chip.size() : 0;
  f.chips.resize(n * values);
  for (std::size_t i = 0; i < n; ++i) {
    const std::vector<std::uint8_t>& chip = batch.faces[i].chip;
    if (chip.size() != values) {
      batch.status = Error{ErrorCode::internal, "kept faces of different sizes"};
      return;
    }
    std::copy(chip.begin(), chip.end(), f.chips.begin() + static_cast<std::ptrdiff_t>(i * values));
  }
  batch.embeddings.clear();
  FaceEmbedder& embedder = *embedders_[static_cast<std::size_t>(worker)];
  batch.status = guarded_call([&] { return embedder.embed_chips(f.chips, n, batch.embeddings); });
  if (batch.status.ok() && batch.embeddings.size() != n) batch.status = Error{ErrorCode::internal, "the model returned too few embeddings"};
  if (!batch.status.ok()) {
    batch.embeddings.clear();
    return;
  }
  for (Embedding& e : batch.embeddings) l2_normalise(e);
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

void Engine::Impl::queue_best_faces(Camera& cam, bool all) {
  std::vector<KeptFace>& ended = cam.best_faces->ended();
  Model& model = *models[*cam.faces_model];
  const auto size = static_cast<std::size_t>(std::max(1, model.config.max_batch()));
  while (ended.size() >= size || (all && !ended.empty())) {
    auto batch = std::make_unique<FaceBatch>();
    batch->seq = cam.face_batches_formed++;
    const auto n = static_cast<std::ptrdiff_t>(std::min(size, ended.size()));
    batch->faces.assign(std::make_move_iterator(ended.begin()), std::make_move_iterator(ended.begin() + n));
    ended.erase(ended.begin(), ended.begin() + n);
    cam.face_batches_out.fetch_add(1);
    if (hooks.replay_faces && hooks.replay_faces(cam.config.id, *batch)) {
      batch->replayed = true;
      if (batch->status.ok() && batch->embeddings.size() != batch->faces.size()) {
        batch->status = Error{ErrorCode::internal, "the replay answered the wrong number of faces"};
      }
      deliver_faces(cam, std::move(batch));
      continue;
    }
    {
      MutexLock lock(mu);
      model.queue.get(mu).face_batches.push_back({cam.shared_from_this(), std::move(batch)});
    }
    work_cv.notify_one();
  }
}

void Engine::Impl::flush_best_faces(Camera& cam) {
  cam.best_faces->end_all();
  queue_best_faces(cam, true);
  cam.faces_flushed = true;  // after the last batch is counted in face_batches_out
  idle_cv.notify_all();
}

Engine::Impl::FaceWork Engine::Impl::take_face_work() {
  for (auto& model : models) {
    std::deque<FaceWork>& waiting = model->queue.get(mu).face_batches;
    if (waiting.empty()) continue;
    FaceWork work = std::move(waiting.front());
    waiting.pop_front();
    return work;
  }
  return {};
}

void Engine::Impl::run_face_work(int worker, FaceWork& work) {
  Camera& cam = *work.camera;
  Model& model = *models[*cam.faces_model];
  if (!governor->admit()) return;  // stopping: the batch goes with the run
  try {
    FaceBatch& batch = *work.batch;
    const SteadyTime start = SteadyClock::now();
    model.stage->embed_kept(worker, batch);
    model.count_call(batch.faces.size(), start);
    if (batch.status.ok()) {
      cam.faces_embedded.fetch_add(batch.faces.size(), std::memory_order_relaxed);
    } else {
      record_stage_error(cam, model, batch.status.error(), batch.faces.empty() ? 0 : batch.faces.front().frame);
    }
    deliver_faces(cam, std::move(work.batch));
  } catch (const std::exception& e) {  // the hook threw
    fail(Error{ErrorCode::internal, std::string("worker: ") + e.what()});
  } catch (...) {
    fail(Error{ErrorCode::internal, "worker: unknown exception"});
  }
}

void Engine::Impl::deliver_faces(Camera& cam, std::unique_ptr<FaceBatch> batch) {
  {
    MutexLock lock(cam.faces_out_mu);
    const std::uint64_t seq = batch->seq;
    cam.faces_done.emplace(seq, std::move(batch));
    for (auto it = cam.faces_done.find(cam.next_faces_out); it != cam.faces_done.end();
         it = cam.faces_done.find(cam.next_faces_out)) {
      const std::unique_ptr<FaceBatch> next = std::move(it->second);
      cam.faces_done.erase(it);
      ++cam.next_faces_out;
      if (hooks.on_faces) hooks.on_faces(cam.config.id, *next);
      cam.face_batches_out.fetch_sub(1);  // after the hook: the run ends when every batch was seen
    }
  }
  idle_cv.notify_all();
}

}  // namespace vigil
