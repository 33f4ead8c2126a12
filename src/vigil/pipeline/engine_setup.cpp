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
  for (const auto& [name, model_config] : config.models) {
    auto model = std::make_unique<Model>();
    model->index = models.size();
    model->name = name;
    model->config = model_config;
    model->detector = model_config.is_detector();
    model->policy.max_batch = static_cast<std::size_t>(std::max(1, model_config.max_batch()));
    model->policy.max_delay =
        std::chrono::microseconds(static_cast<std::int64_t>(std::max(0.0, model_config.max_delay_ms) * 1000));
    model->batch_sizes = std::vector<std::atomic<std::uint64_t>>(model->policy.max_batch + 1);
    register_model_metrics(*model);
    model_index[name] = models.size();
    models.push_back(std::move(model));
  }
  detectors.resize(static_cast<std::size_t>(workers_count));
  embedders.resize(static_cast<std::size_t>(workers_count));
  for (std::size_t w = 0; w < detectors.size(); ++w) {
    for (const auto& model : models) {
      if (model->detector) {
        auto detector = hooks.make_detector(model->name, model->config);
        if (!detector.ok()) return with_context(detector.error(), "model " + model->name);
        detectors[w].push_back(std::move(detector).value());
        embedders[w].push_back(nullptr);
      } else {
        auto embedder = FaceEmbedder::create(model->config.embedder);
        if (!embedder.ok()) return with_context(embedder.error(), "model " + model->name);
        detectors[w].push_back(nullptr);
        embedders[w].push_back(std::move(embedder).value());
      }
    }
  }
  return {};
}

// The gallery (identity.gallery) is embedded once, at start, with the first detector and
// embedder of the config.
Status Engine::Impl::build_gallery() {
  if (config.gallery.empty()) return {};
  Detector* detector = nullptr;
  FaceEmbedder* embedder = nullptr;
  for (std::size_t m = 0; m < models.size(); ++m) {
    if (!detector && detectors[0][m]) detector = detectors[0][m].get();
    if (!embedder && embedders[0][m]) embedder = embedders[0][m].get();
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
