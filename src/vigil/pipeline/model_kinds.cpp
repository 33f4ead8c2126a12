#include "vigil/pipeline/model_kinds.h"

#include <map>

#include "vigil/core/mutex.h"
#include "vigil/vision/blazeface.h"
#include "vigil/vision/movenet.h"
#include "vigil/vision/scrfd.h"
#include "vigil/vision/yolo.h"

namespace vigil {

namespace {

template <class T>
Result<std::unique_ptr<Detector>> as_detector(Result<std::unique_ptr<T>> created) {
  if (!created.ok()) return created.error();
  return std::unique_ptr<Detector>(std::move(created).value());
}

// The fields every detector's config has, from the settings.
template <class Config>
Config detector_config(const ModelSettings& s) {
  Config c;
  c.model_path = s.model_path;
  c.input_size = s.input_size;
  c.score_threshold = s.score_threshold;
  c.nms_iou = s.nms_iou;
  c.max_batch = s.max_batch;
  c.backend = s.backend;
  c.precision = s.precision;
  c.threads = s.threads;
  return c;
}

std::pair<std::string, std::string> multiple_of_32(int size, bool zero_allowed) {
  if ((size == 0 && zero_allowed) || (size >= 32 && size <= 4096 && size % 32 == 0)) return {};
  return {"input_size", "must be a multiple of 32"};
}

// A detector kind with its defaults; it takes input_size, score_threshold and nms_iou.
ModelKind detector_kind(std::string name, ModelRole role, int input_size, float score_threshold, float nms_iou) {
  ModelKind k;
  k.name = std::move(name);
  k.role = role;
  k.defaults.input_size = input_size;
  k.defaults.score_threshold = score_threshold;
  k.defaults.nms_iou = nms_iou;
  k.settings = {"input_size", "score_threshold", "nms_iou"};
  return k;
}

// 128: faces close to the camera; 256: faces across a room.
ModelKind blazeface() {
  ModelKind k = detector_kind("blazeface", ModelRole::face_detector, 256, 0.5f, 0.3f);
  k.defaults.max_batch = 8;
  k.defaults.nms = NmsMode::weighted;
  k.settings.push_back("nms");
  k.check = [](const ModelSettings& s) -> std::pair<std::string, std::string> {
    if (s.input_size != 128 && s.input_size != 256) return {"input_size", "must be 128 or 256"};
    return {};
  };
  k.make_detector = [](const ModelSettings& s) {
    BlazeFaceConfig c = detector_config<BlazeFaceConfig>(s);
    c.nms = s.nms;
    return as_detector(BlazeFace::create(c));
  };
  return k;
}

// input_size: used when the file's is dynamic.
ModelKind scrfd() {
  ModelKind k = detector_kind("scrfd", ModelRole::face_detector, 640, 0.5f, 0.4f);
  k.check = [](const ModelSettings& s) { return multiple_of_32(s.input_size, false); };
  k.make_detector = [](const ModelSettings& s) { return as_detector(Scrfd::create(detector_config<ScrfdConfig>(s))); };
  return k;
}

// input_size 0: from the model file (640 for the usual exports).
ModelKind yolo(bool pose) {
  ModelKind k = detector_kind(pose ? "yolo_pose" : "yolo", ModelRole::object_detector, 0, 0.25f, 0.7f);
  k.check = [](const ModelSettings& s) { return multiple_of_32(s.input_size, true); };
  k.make_detector = [pose](const ModelSettings& s) {
    YoloConfig c = detector_config<YoloConfig>(s);
    c.pose = pose;
    return as_detector(Yolo::create(c));
  };
  return k;
}

// People with the 17 COCO keypoints (MoveNet MultiPose, converted by tools/tfjs_graph_onnx.py);
// input_size 0: the file's.
ModelKind movenet() {
  ModelKind k = detector_kind("movenet", ModelRole::object_detector, 0, 0.2f, 0.5f);  // nms_iou unused
  k.defaults.max_batch = 4;
  // Its person scores (centre times mean keypoint score) run lower than a face detector's:
  // 0.2 to 0.4 for the pedestrians of vtest.avi.
  k.track_high_score = 0.2f;
  k.track_new_score = 0.25f;
  k.settings = {"input_size", "score_threshold"};
  k.check = [](const ModelSettings& s) { return multiple_of_32(s.input_size, true); };
  k.make_detector = [](const ModelSettings& s) { return as_detector(MoveNet::create(detector_config<MoveNetConfig>(s))); };
  return k;
}

ModelKind face_embedder() {
  ModelKind k;
  k.name = "face_embedder";
  k.role = ModelRole::face_embedder;
  k.defaults.max_batch = 16;
  k.max_delay_ms = 5.0;
  k.make_embedder = [](const ModelSettings& s) {
    return FaceEmbedder::create(FaceEmbedderConfig{s.model_path, s.max_batch, s.backend, s.precision, s.threads});
  };
  return k;
}

// MobileFaceNet by name: a face_embedder whose file must be of that family (a config that says
// mobilefacenet and points at another descriptor is refused at start, naming both).
ModelKind mobilefacenet() {
  ModelKind k = face_embedder();
  k.name = "mobilefacenet";
  k.make_embedder = [](const ModelSettings& s) -> Result<std::unique_ptr<FaceEmbedder>> {
    auto made = FaceEmbedder::create(FaceEmbedderConfig{s.model_path, s.max_batch, s.backend, s.precision, s.threads});
    if (!made.ok()) return made;
    if ((*made)->family() != FaceEmbedder::Family::mobilefacenet) {
      return Error{ErrorCode::invalid_argument, s.model_path + ": kind mobilefacenet takes [N,112,112,3] -> [N,D]; this file is a " +
                                                    (*made)->family_name() + " descriptor (use kind face_embedder)"};
    }
    return made;
  };
  return k;
}

struct Table {
  Mutex mu;
  std::map<std::string, std::unique_ptr<const ModelKind>, std::less<>> kinds GUARDED_BY(mu);

  Table() {
    MutexLock lock(mu);
    for (ModelKind k : {blazeface(), scrfd(), yolo(false), yolo(true), movenet(), face_embedder(), mobilefacenet()}) {
      const std::string name = k.name;
      kinds.emplace(name, std::make_unique<const ModelKind>(std::move(k)));
    }
  }
};

Table& table() {
  static Table t;
  return t;
}

}  // namespace

Status register_model_kind(ModelKind kind) {
  if (kind.name.empty()) return Error{ErrorCode::invalid_argument, "a model kind needs a name"};
  const bool detector = kind.role != ModelRole::face_embedder;
  if (detector ? !kind.make_detector : !kind.make_embedder) {
    return Error{ErrorCode::invalid_argument, "model kind " + kind.name + ": no " + (detector ? "make_detector" : "make_embedder")};
  }
  Table& t = table();
  MutexLock lock(t.mu);
  const std::string name = kind.name;
  if (!t.kinds.emplace(name, std::make_unique<const ModelKind>(std::move(kind))).second) {
    return Error{ErrorCode::already_exists, "model kind " + name + " exists already"};
  }
  return {};
}

const ModelKind* find_model_kind(std::string_view name) {
  Table& t = table();
  MutexLock lock(t.mu);
  const auto found = t.kinds.find(name);
  return found == t.kinds.end() ? nullptr : found->second.get();
}

std::vector<std::string> model_kind_names() {
  Table& t = table();
  MutexLock lock(t.mu);
  std::vector<std::string> names;
  for (const auto& [name, kind] : t.kinds) names.push_back(name);
  return names;
}

}  // namespace vigil
