// The table of model kinds: the one place a model kind is added. Each kind names its role in
// the flow, the settings a config may give it (with its defaults and checks) and how an
// instance is made from them. The config loader accepts exactly the kinds in the table; the
// engine (every worker's instance), `vigil harvest`, `vigil bench` and the naive loop make
// their models through it (pipeline/model_factory.h). Built in: blazeface and scrfd (faces
// with keypoints), yolo and yolo_pose (objects and people), movenet (people with their 17
// keypoints), face_embedder and mobilefacenet (a face_embedder of that family). More are added with
// register_model_kind() before a config naming them is loaded (README: "Adding a model").
//
// Threading: the table has its own lock; a registered kind is never changed or removed, so
// the pointers find_model_kind() returns stay valid.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/core/status.h"
#include "vigil/infer/backend.h"
#include "vigil/vision/detector.h"
#include "vigil/vision/face_embedder.h"
#include "vigil/vision/nms.h"

namespace vigil {

enum class ModelRole {
  face_detector,    // faces with the keypoints that align them for an embedder
  object_detector,  // objects or people (COCO classes, keypoints of a pose)
  face_embedder,    // aligned faces to embeddings
};

// A model's settings, as a config gives them (every kind the same fields; a kind takes the
// ones it names in ModelKind::settings and has its own defaults).
struct ModelSettings {
  std::string model_path;
  BackendKind backend = BackendKind::automatic;
  Precision precision = Precision::fp32;  // bf16: oneDNN only
  int threads = 0;                        // intra-op threads of an instance (0: the process default)
  int max_batch = 1;                      // frames (detectors) or faces (embedders) per call
  int input_size = 0;                     // detectors: 0 for the model file's
  float score_threshold = 0.5f;
  float nms_iou = 0.4f;
  NmsMode nms = NmsMode::hard;
};

struct ModelKind {
  std::string name;
  ModelRole role = ModelRole::face_detector;
  ModelSettings defaults;
  double max_delay_ms = 2.0;  // how long a batch waits for more members, by default
  // The tracker's scores for this kind's detections, unless a camera's `track:` gives them:
  // a detection at or above high_score goes to the first association, one at or above
  // new_track_score starts a track (track/byte_tracker.h; BlazeFace's scale by default).
  float track_high_score = 0.5f;
  float track_new_score = 0.6f;
  // The optional settings it takes beyond path, backend, precision, max_batch and
  // max_delay_ms: any of "input_size", "score_threshold", "nms_iou", "nms".
  std::vector<std::string> settings;
  // Checks the values of a config's settings: an empty string, or what is wrong with the
  // named setting ({"input_size", "must be 128 or 256"}).
  std::function<std::pair<std::string, std::string>(const ModelSettings&)> check;
  // One instance: make_detector for the detector roles, make_embedder for face_embedder.
  std::function<Result<std::unique_ptr<Detector>>(const ModelSettings&)> make_detector;
  std::function<Result<std::unique_ptr<FaceEmbedder>>(const ModelSettings&)> make_embedder;
};

// Adds a kind to the table. Errors: already_exists for a taken name, invalid_argument for a
// kind without a name, or without the maker its role needs.
Status register_model_kind(ModelKind kind);
// The kind of that name, or null.
const ModelKind* find_model_kind(std::string_view name);
// Every kind's name, sorted.
std::vector<std::string> model_kind_names();

}  // namespace vigil
