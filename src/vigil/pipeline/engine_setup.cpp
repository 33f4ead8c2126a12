// Engine set-up: the models (one detector or embedder instance per worker), the gallery of
// known people, and the sinks, built once when the engine is created.
#include <spdlog/spdlog.h>

#include "vigil/pipeline/engine_impl.h"
#include "vigil/pipeline/model_factory.h"

namespace vigil {

using namespace engine_internal;

Status Engine::Impl::build_models() {
  if (!hooks.make_detector) {
    hooks.make_detector = [](const std::string&, const ModelConfig& m) { return make_detector(m); };
  }
  if (!hooks.make_embedder) {
    hooks.make_embedder = [](const std::string&, const ModelConfig& m) { return make_embedder(m); };
  }
  const auto instances_per_model = static_cast<std::size_t>(workers_count);
  for (auto [name, model_config] : config.models) {
    model_config.set_threads(inference_threads);
    auto model = std::make_unique<Model>(mu);
    model->index = models.size();
    model->name = name;
    model->config = model_config;
    model->detector = model_config.is_detector();
    model->offline = config.offline;
    if (model->detector) {
      std::vector<std::unique_ptr<Detector>> instances;
      for (std::size_t w = 0; w < instances_per_model; ++w) {
        auto detector = hooks.make_detector(name, model_config);
        if (!detector.ok()) return with_context(detector.error(), "model " + name);
        instances.push_back(std::move(detector).value());
      }
      model->first_detector = instances.front().get();
      model->stage = make_detector_stage(*model, std::move(instances));
    } else {
      std::vector<std::unique_ptr<FaceEmbedder>> instances;
      for (std::size_t w = 0; w < instances_per_model; ++w) {
        auto embedder = hooks.make_embedder(name, model_config);
        if (!embedder.ok()) return with_context(embedder.error(), "model " + name);
        instances.push_back(std::move(embedder).value());
      }
      model->first_embedder = instances.front().get();
      model->stage = make_embedder_stage(*model, std::move(instances));
    }
    // The stage's declaration decides how cameras wait for it and how it batches.
    const BatchPolicy policy = model->stage->spec(false).batch.value_or(BatchPolicy{});
    {
      MutexLock lock(mu);  // no worker runs yet; the analysis wants it all the same
      model->queue.get(mu).edge = Batcher<CameraRef>(policy);
    }
    const auto largest = std::max(policy.max_batch, static_cast<std::size_t>(std::max(1, model_config.max_batch())));
    model->batch_sizes = std::vector<std::atomic<std::uint64_t>>(largest + 1);
    register_model_metrics(*model);
    model_index[name] = models.size();
    models.push_back(std::move(model));
  }
  return {};
}

// The gallery (identity.gallery) is embedded once, at start, with the first face detector
// and embedder of the config.
Status Engine::Impl::build_gallery() {
  if (config.gallery.empty()) return {};
  Detector* detector = nullptr;
  FaceEmbedder* embedder = nullptr;
  for (const auto& model : models) {
    if (!detector && model->config.finds_faces()) detector = model->first_detector;
    if (!embedder) embedder = model->first_embedder;
  }
  if (!detector || !embedder) {
    return Error{ErrorCode::invalid_argument,
                 "identity.gallery needs a face detector (blazeface or scrfd) and a face_embedder model"};
  }
  std::vector<std::string> warnings;
  auto loaded = load_gallery(config.gallery, *detector, *embedder, warnings);
  for (const auto& w : warnings) spdlog::warn("gallery: {}", w);
  if (!loaded.ok()) return loaded.error();
  gallery = std::move(loaded).value();
  spdlog::info("gallery {}: {} people, {} photos embedded", config.gallery, gallery.people(),
               gallery.embeddings());
  return {};
}

Status Engine::Impl::open_sinks() {
  for (const auto& sink_config : config.sinks) {
    auto sink = JsonlSink::open(sink_config.jsonl);
    if (!sink.ok()) return with_context(sink.error(), "sink " + sink_config.jsonl.path);
    if ((*sink)->repaired_bytes() > 0) {
      spdlog::warn("sink {}: removed a torn last line ({} bytes) left by an earlier crash", sink_config.jsonl.path,
                   (*sink)->repaired_bytes());
    }
    sinks.push_back(std::move(sink).value());
  }
  return {};
}

Result<std::vector<StageSpec>> Engine::pipeline(const std::string& camera_id) const {
  const Impl& s = *impl_;
  std::shared_ptr<Camera> cam;
  {
    MutexLock lock(s.mu);
    for (const auto& c : s.cameras) {
      if (c->config.id == camera_id) cam = c;
    }
  }
  if (!cam) return Error{ErrorCode::not_found, "no camera '" + camera_id + "'"};
  std::vector<StageSpec> chain;
  chain.push_back({StageKind::capture, camera_id, std::nullopt, std::nullopt, 0});
  StageSpec detect = s.models[cam->model]->stage->spec(cam->live);
  detect.input = cam->input.spec();  // the edge as built
  chain.push_back(std::move(detect));
  if (cam->tracker) {
    const DetectConfig& d = cam->config.detect;
    const bool skips = d.every > 1 || d.fps > 0;
    chain.push_back({StageKind::track, "", std::nullopt, std::nullopt, kTracks | (skips ? kPredictedTracks : 0u)});
  }
  if (cam->faces_model && cam->best_faces) {  // the frames go on; the kept faces are embedded in batches of their own
    chain.push_back({StageKind::select, "best faces", std::nullopt, std::nullopt, 0});
    chain.push_back({StageKind::deliver, "", std::nullopt, std::nullopt, 0});
    StageSpec embed = s.models[*cam->faces_model]->stage->spec(cam->live);
    embed.input = EdgeSpec{EdgeOverflow::queue, static_cast<std::size_t>(std::max(1, s.models[*cam->faces_model]->config.max_batch()))};
    embed.batch.reset();
    embed.adds = 0;
    chain.push_back(std::move(embed));
    return chain;
  }
  if (cam->faces_model) chain.push_back(s.models[*cam->faces_model]->stage->spec(cam->live));
  chain.push_back({StageKind::deliver, "", std::nullopt, std::nullopt, 0});
  return chain;
}

}  // namespace vigil
