// Engine set-up: the models (one detector or embedder instance per worker), the gallery of
// known people, and the sinks, built once when the engine is created.
#include <spdlog/spdlog.h>

#include "vigil/pipeline/engine_impl.h"

namespace vigil {

using namespace engine_internal;

Status Engine::Impl::build_models() {
  if (!hooks.make_detector) {
    hooks.make_detector = [](const std::string&, const ModelConfig& m) -> Result<std::unique_ptr<Detector>> {
      auto detector = BlazeFace::create(m.blazeface);
      if (!detector.ok()) return detector.error();
      return std::unique_ptr<Detector>(std::move(detector).value());
    };
  }
  const auto instances_per_model = static_cast<std::size_t>(workers_count);
  for (const auto& [name, model_config] : config.models) {
    auto model = std::make_unique<Model>();
    model->index = models.size();
    model->name = name;
    model->config = model_config;
    model->detector = model_config.is_detector();
    BatchPolicy policy;
    policy.max_batch = static_cast<std::size_t>(std::max(1, model_config.max_batch()));
    policy.max_delay = std::chrono::microseconds(static_cast<std::int64_t>(std::max(0.0, model_config.max_delay_ms) * 1000));
    model->edge = Batcher<CameraRef>(policy);
    model->batch_sizes = std::vector<std::atomic<std::uint64_t>>(policy.max_batch + 1);
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
        auto embedder = FaceEmbedder::create(model_config.embedder);
        if (!embedder.ok()) return with_context(embedder.error(), "model " + name);
        instances.push_back(std::move(embedder).value());
      }
      model->first_embedder = instances.front().get();
      model->stage = make_embedder_stage(*model, std::move(instances));
    }
    register_model_metrics(*model);
    model_index[name] = models.size();
    models.push_back(std::move(model));
  }
  return {};
}

// The gallery (identity.gallery) is embedded once, at start, with the first detector and
// embedder of the config.
Status Engine::Impl::build_gallery() {
  if (config.gallery.empty()) return {};
  Detector* detector = nullptr;
  FaceEmbedder* embedder = nullptr;
  for (const auto& model : models) {
    if (!detector) detector = model->first_detector;
    if (!embedder) embedder = model->first_embedder;
  }
  if (!detector || !embedder) {
    return Error{ErrorCode::invalid_argument, "identity.gallery needs a detector and a face_embedder model"};
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

}  // namespace vigil
