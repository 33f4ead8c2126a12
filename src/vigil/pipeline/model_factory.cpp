#include "vigil/pipeline/model_factory.h"

#include "vigil/vision/blazeface.h"
#include "vigil/vision/scrfd.h"
#include "vigil/vision/yolo.h"

namespace vigil {

namespace {

template <class T>
Result<std::unique_ptr<Detector>> as_detector(Result<std::unique_ptr<T>> created) {
  if (!created.ok()) return created.error();
  return std::unique_ptr<Detector>(std::move(created).value());
}

}  // namespace

Result<std::unique_ptr<Detector>> make_detector(const ModelConfig& config) {
  if (config.kind == "yolo" || config.kind == "yolo_pose") return as_detector(Yolo::create(config.yolo));
  if (config.kind == "scrfd") return as_detector(Scrfd::create(config.scrfd));
  if (config.kind == "blazeface") return as_detector(BlazeFace::create(config.blazeface));
  return Error{ErrorCode::invalid_argument, "a " + config.kind + " model is not a detector"};
}

Result<std::unique_ptr<FaceEmbedder>> make_embedder(const ModelConfig& config) {
  if (config.kind != "face_embedder") return Error{ErrorCode::invalid_argument, "a " + config.kind + " model is not a face_embedder"};
  return FaceEmbedder::create(config.embedder);
}

}  // namespace vigil
