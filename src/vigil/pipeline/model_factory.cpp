#include "vigil/pipeline/model_factory.h"

namespace vigil {

Result<std::unique_ptr<Detector>> make_detector(const ModelConfig& config) {
  const ModelKind* kind = find_model_kind(config.kind);
  if (!kind) return Error{ErrorCode::invalid_argument, "no model kind " + config.kind};
  if (kind->role == ModelRole::face_embedder) return Error{ErrorCode::invalid_argument, "a " + config.kind + " model is not a detector"};
  return kind->make_detector(config.settings);
}

Result<std::unique_ptr<FaceEmbedder>> make_embedder(const ModelConfig& config) {
  const ModelKind* kind = find_model_kind(config.kind);
  if (!kind) return Error{ErrorCode::invalid_argument, "no model kind " + config.kind};
  if (kind->role != ModelRole::face_embedder) return Error{ErrorCode::invalid_argument, "a " + config.kind + " model is not a face_embedder"};
  return kind->make_embedder(config.settings);
}

}  // namespace vigil
