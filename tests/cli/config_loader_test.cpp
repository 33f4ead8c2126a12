#include "vigil/cli/config_loader.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

const char* kValid = R"(
models:
  faces:
    path: /models/blazeface_back_256_dyn.onnx
    input_size: 256
    max_batch: 8
cameras:
  - id: lobby
    source: {type: file, url: /media/lobby.mp4, decoder_threads: 2}
    detect: {model: faces, every: 2}
  - id: pan
    source: {type: synthetic, pattern: image, path: /media/sample1.jpg, width: 1280, height: 720, fps: 15}
sinks:
  - {type: jsonl, path: out/results.jsonl}
threads: {inference: 2}
)";

std::string error_of(const std::string& yaml) {
  auto config = parse_config(yaml, "test.yaml");
  EXPECT_FALSE(config.ok()) << "accepted:\n" << yaml;
  if (config.ok()) return "";
  EXPECT_EQ(config.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(config.error().message.find('\n'), std::string::npos) << "one line";
  return config.error().message;
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

TEST(ConfigLoaderTest, ValidConfigIsTyped) {
  auto config = parse_config(kValid);
  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_EQ(config->cameras.size(), 2u);
  EXPECT_EQ(config->cameras[0].id, "lobby");
  EXPECT_EQ(config->cameras[0].source.type, SourceType::file);
  EXPECT_EQ(config->cameras[0].source.decoder_threads, 2);
  EXPECT_EQ(config->cameras[0].detect.every, 2);
  EXPECT_EQ(config->cameras[1].source.pattern, SyntheticPattern::image);
  EXPECT_EQ(config->cameras[1].detect.model, "faces");  // the only model is the default
  EXPECT_EQ(config->models.at("faces").max_batch(), 8);
  EXPECT_EQ(config->sinks.at(0).jsonl.path, "out/results.jsonl");
  EXPECT_EQ(config->inference_threads, 2);
}

TEST(ConfigLoaderTest, MalformedYamlNamesFileLineAndColumn) {
  const std::string message = error_of("cameras:\n  - id: [lobby\n");
  EXPECT_NE(message.find("test.yaml:"), std::string::npos) << message;
  EXPECT_NE(message.find("malformed YAML"), std::string::npos) << message;
}

TEST(ConfigLoaderTest, WrongTypeNamesTheField) {
  const std::string message = error_of(replace(kValid, "fps: 15", "fps: fast"));
  EXPECT_NE(message.find("cameras[1].source.fps: expected a number, got 'fast'"), std::string::npos) << message;
}

TEST(ConfigLoaderTest, UnknownKeyNamesTheField) {
  const std::string message = error_of(replace(kValid, "decoder_threads: 2", "decoder_thread: 2"));
  EXPECT_NE(message.find("cameras[0].source.decoder_thread: unknown key"), std::string::npos) << message;
}

TEST(ConfigLoaderTest, UnknownTopLevelKey) {
  EXPECT_NE(error_of(std::string(kValid) + "camras: []\n").find("camras: unknown key"), std::string::npos);
}

TEST(ConfigLoaderTest, ShotCutIsALumaChange) {
  auto config = parse_config(replace(kValid, "detect: {model: faces, every: 2}", "detect: {model: faces, every: 2}\n    track: {shot_cut: 12}"));
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->cameras[0].track.shot_cut, 12.0);
  EXPECT_EQ(config->cameras[1].track.shot_cut, 0.0) << "off by default";
  const std::string message =
      error_of(replace(kValid, "detect: {model: faces, every: 2}", "detect: {model: faces, every: 2}\n    track: {shot_cut: 300}"));
  EXPECT_NE(message.find("cameras[0].track.shot_cut"), std::string::npos) << message;
}

// A camera's tracker takes its detector kind's scores (MoveNet's people score lower than
// faces) unless its `track:` gives them.
TEST(ConfigLoaderTest, TheTrackerTakesTheDetectorKindsScoresUnlessTheCameraGivesThem) {
  const std::string people = replace(replace(kValid, "    path: /models/blazeface_back_256_dyn.onnx\n    input_size: 256\n",
                                             "    kind: movenet\n    path: /models/movenet-multipose.onnx\n"),
                                     "detect: {model: faces, every: 2}", "detect: {model: faces, every: 2}\n    track: {new_track_score: 0.4}");
  auto config = parse_config(people);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_FLOAT_EQ(config->cameras[0].track.tracker.high_score, 0.2f);
  EXPECT_FLOAT_EQ(config->cameras[0].track.tracker.new_track_score, 0.4f) << "given";
  EXPECT_FLOAT_EQ(config->cameras[1].track.tracker.high_score, 0.2f);
  EXPECT_FLOAT_EQ(config->cameras[1].track.tracker.new_track_score, 0.25f);
  auto faces = parse_config(kValid);
  ASSERT_TRUE(faces.ok());
  EXPECT_FLOAT_EQ(faces->cameras[1].track.tracker.high_score, 0.5f);
  EXPECT_FLOAT_EQ(faces->cameras[1].track.tracker.new_track_score, 0.6f);
}

TEST(ConfigLoaderTest, OfflineTakesFilesOnly) {
  const std::string files_only = replace(kValid, "  - id: pan\n", "") ;
  const std::string without_pan = files_only.substr(0, files_only.find("    source: {type: synthetic")) +
                                  files_only.substr(files_only.find("sinks:"));
  auto offline = parse_config(without_pan + "offline: true\n");
  ASSERT_TRUE(offline.ok()) << offline.error().message;
  EXPECT_TRUE(offline->offline);
  EXPECT_FALSE(parse_config(kValid)->offline);
  const std::string message = error_of(std::string(kValid) + "offline: true\n");
  EXPECT_NE(message.find("cameras[1].source: offline mode takes sources that are not live"), std::string::npos) << message;
}

TEST(ConfigLoaderTest, StrideIsForFiles) {
  auto sampled = parse_config(replace(kValid, "decoder_threads: 2}", "decoder_threads: 2, stride: 5}"));
  ASSERT_TRUE(sampled.ok()) << sampled.error().message;
  EXPECT_EQ(sampled->cameras[0].source.stride, 5);
  EXPECT_EQ(parse_config(kValid)->cameras[0].source.stride, 1);
  EXPECT_NE(error_of(replace(kValid, "decoder_threads: 2}", "decoder_threads: 2, stride: 0}")).find("cameras[0].source.stride: must be between"),
            std::string::npos);
  const std::string message = error_of(replace(kValid, "type: file, url: /media/lobby.mp4", "type: stream, url: rtsp://cam/1, stride: 2"));
  EXPECT_NE(message.find("cameras[0].source.stride: is for file sources"), std::string::npos) << message;
}

TEST(ConfigLoaderTest, MissingUrlNamesTheField) {
  const std::string message = error_of(replace(kValid, "url: /media/lobby.mp4, ", ""));
  EXPECT_NE(message.find("cameras[0].source.url: required for type 'file'"), std::string::npos) << message;
}

TEST(ConfigLoaderTest, StreamNeedsAUrlWithAScheme) {
  const std::string message = error_of(replace(kValid, "type: file, url: /media/lobby.mp4", "type: stream, url: camera1"));
  EXPECT_NE(message.find("cameras[0].source.url"), std::string::npos) << message;
}

TEST(ConfigLoaderTest, OutOfRangeValuesNameTheField) {
  EXPECT_NE(error_of(replace(kValid, "every: 2", "every: 0")).find("cameras[0].detect.every: must be between"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "input_size: 256", "input_size: 300")).find("models.faces.input_size"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "width: 1280", "width: 1281")).find("cameras[1].source.width: must be even"),
            std::string::npos);
}

TEST(ConfigLoaderTest, UnknownModelAndDuplicateIdsAreRejected) {
  EXPECT_NE(error_of(replace(kValid, "model: faces", "model: bodies")).find("cameras[0].detect.model: unknown model"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "id: pan", "id: lobby")).find("cameras[1].id: duplicate"), std::string::npos);
}

TEST(ConfigLoaderTest, BadEnumListsTheChoices) {
  const std::string message = error_of(replace(kValid, "pattern: image", "pattern: photo"));
  EXPECT_NE(message.find("cameras[1].source.pattern: must be one of procedural, image, video"), std::string::npos)
      << message;
}

TEST(ConfigLoaderTest, TrackingIsOnByDefaultAndConfigurable) {
  auto config = parse_config(kValid);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_TRUE(config->cameras[0].track.enabled);
  EXPECT_EQ(config->cameras[0].track.emit, TrackEmit::detections);

  config = parse_config(replace(kValid, "detect: {model: faces, every: 2}",
                                "detect: {model: faces, every: 2}\n    track: false"));
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_FALSE(config->cameras[0].track.enabled);

  config = parse_config(replace(kValid, "detect: {model: faces, every: 2}",
                                "detect: {model: faces, every: 2}\n    track: {emit: every_frame, lost_frames: 10, "
                                "high_score: 0.6}"));
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->cameras[0].track.emit, TrackEmit::every_frame);
  EXPECT_EQ(config->cameras[0].track.tracker.lost_frames, 10);
  EXPECT_FLOAT_EQ(config->cameras[0].track.tracker.high_score, 0.6f);

  EXPECT_NE(error_of(replace(kValid, "detect: {model: faces, every: 2}",
                             "detect: {model: faces, every: 2}\n    track: {emit: sometimes}"))
                .find("cameras[0].track.emit: must be one of detections, every_frame"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "detect: {model: faces, every: 2}",
                             "detect: {model: faces, every: 2}\n    track: {lost_frame: 3}"))
                .find("cameras[0].track.lost_frame: unknown key"),
            std::string::npos);
}

TEST(ConfigLoaderTest, EmptyOrMissingSectionsAreRejected) {
  EXPECT_NE(error_of("").find("empty"), std::string::npos);
  EXPECT_NE(error_of("models: {faces: {path: x}}\n").find("cameras: required"), std::string::npos);
  EXPECT_NE(error_of("cameras: 3\nmodels: {faces: {path: x}}\n").find("cameras: required"), std::string::npos);
  EXPECT_TRUE(parse_config("models: {faces: {path: x}}\n", "config", ConfigUse::models).ok()) << "the harvest takes only the models";
  EXPECT_FALSE(parse_config("cameras: 3\nmodels: {faces: {path: x}}\n", "config", ConfigUse::models).ok()) << "cameras there are checked";
  EXPECT_FALSE(parse_config("models: {}\n", "config", ConfigUse::models).ok());
}

TEST(ConfigLoaderTest, LiveDefaultsByKindAndCanBeOverridden) {
  auto config = parse_config(std::string(kValid) + "cpu_budget: 1.5\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_FALSE(config->cameras[0].source.live);  // a file: every frame, none dropped
  EXPECT_TRUE(config->cameras[1].source.live);   // a paced synthetic camera
  EXPECT_DOUBLE_EQ(config->cpu_budget.cores, 1.5);
  EXPECT_FALSE(config->cpu_budget.enforce);
  auto overridden = parse_config(replace(kValid, "decoder_threads: 2", "decoder_threads: 2, live: true"));
  ASSERT_TRUE(overridden.ok());
  EXPECT_TRUE(overridden->cameras[0].source.live);
}

TEST(ConfigLoaderTest, BudgetWorkersFaultsAndDetectFps) {
  const std::string yaml = replace(replace(kValid, "fps: 15}", "fps: 15, faults: {every_s: 5, kinds: [stall, corrupt], "
                                                               "stall_s: 2, jitter_ms: 10}}\n    detect: {fps: 5}"),
                                   "max_batch: 8", "max_batch: 8\n    max_delay_ms: 4") +
                           "cpu_budget: {cores: 1, enforce: true}\nworkers: 3\n";
  auto config = parse_config(yaml);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_DOUBLE_EQ(config->cpu_budget.cores, 1.0);
  EXPECT_TRUE(config->cpu_budget.enforce);
  EXPECT_EQ(config->workers, 3);
  EXPECT_DOUBLE_EQ(config->models.at("faces").max_delay_ms, 4.0);
  const FaultConfig& faults = config->cameras[1].source.faults;
  EXPECT_DOUBLE_EQ(faults.every_s, 5.0);
  ASSERT_EQ(faults.kinds.size(), 2u);
  EXPECT_EQ(faults.kinds[1], FaultKind::corrupt);
  EXPECT_DOUBLE_EQ(config->cameras[1].detect.fps, 5.0);
}

TEST(ConfigLoaderTest, FaultAndDetectErrorsNameTheField) {
  EXPECT_NE(error_of(replace(kValid, "fps: 15}", "fps: 15, faults: {kinds: [explode]}}"))
                .find("cameras[1].source.faults.kinds[0]: must be one of stall, disconnect, corrupt"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "every: 2", "every: 2, fps: 5")).find("cameras[0].detect.fps: give either"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kValid) + "cpu_budget: {enforce: true}\n").find("cpu_budget.cores: required"),
            std::string::npos);
}

TEST(ConfigLoaderTest, MissingFileIsNotFound) {
  auto config = load_config_file("/nonexistent/vigil.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, ErrorCode::not_found);
}

}  // namespace
}  // namespace vigil

namespace vigil {
namespace {

TEST(ConfigLoaderTest, ModelKindsAndBackendsAreTyped) {
  auto config = parse_config(replace(kValid, "    max_batch: 8\n",
                                     "    max_batch: 8\n    backend: opencv\n"
                                     "  objects: {kind: yolo, path: /models/yolo11n.onnx, max_batch: 4, score_threshold: 0.3}\n"
                                     "  people: {kind: yolo_pose, path: /models/yolov8n-pose.onnx, input_size: 320}\n"
                                     "  scrfd: {kind: scrfd, path: /models/det_10g.onnx, nms_iou: 0.4}\n"),
                             "test.yaml");
  ASSERT_FALSE(config.ok());  // several detectors: each camera must name its own
  EXPECT_NE(config.error().message.find("required when there are several detectors"), std::string::npos);
  config = parse_config(replace(replace(kValid, "    max_batch: 8\n",
                                        "    max_batch: 8\n    backend: opencv\n"
                                        "  objects: {kind: yolo, path: /models/yolo11n.onnx, max_batch: 4, score_threshold: 0.3}\n"
                                        "  people: {kind: yolo_pose, path: /models/yolov8n-pose.onnx, input_size: 320}\n"
                                        "  scrfd: {kind: scrfd, path: /models/det_10g.onnx, nms_iou: 0.4}\n"),
                                "source: {type: synthetic, pattern: image, path: /media/sample1.jpg, width: 1280, height: 720, fps: 15}",
                                "source: {type: synthetic, pattern: image, path: /media/sample1.jpg, width: 1280, height: 720, fps: 15}\n"
                                "    detect: {model: objects}"),
                        "test.yaml");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->models.at("faces").backend(), BackendKind::opencv);
  const ModelConfig& objects = config->models.at("objects");
  EXPECT_EQ(objects.kind, "yolo");
  EXPECT_EQ(objects.max_batch(), 4);
  EXPECT_FLOAT_EQ(objects.settings.score_threshold, 0.3f);
  EXPECT_EQ(objects.model_path(), "/models/yolo11n.onnx");
  EXPECT_EQ(objects.backend(), BackendKind::automatic);
  EXPECT_FALSE(objects.finds_faces());
  EXPECT_EQ(config->models.at("people").kind, "yolo_pose");
  EXPECT_EQ(config->models.at("people").settings.input_size, 320);
  EXPECT_FLOAT_EQ(config->models.at("scrfd").settings.nms_iou, 0.4f);
  EXPECT_TRUE(config->models.at("scrfd").finds_faces());
  EXPECT_EQ(config->cameras[1].detect.model, "objects");
}

TEST(ConfigLoaderTest, BadBackendsKindsAndFaceSettingsNameTheField) {
  EXPECT_NE(error_of(replace(kValid, "    max_batch: 8\n", "    max_batch: 8\n    backend: tensorrt\n"))
                .find("models.faces.backend"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "    max_batch: 8\n", "    max_batch: 8\n    precision: int4\n")).find("models.faces.precision"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "    max_batch: 8\n", "    max_batch: 8\n    backend: xnnpack\n    precision: bf16\n"))
                .find("bf16 runs on backend onednn"),
            std::string::npos);
  auto bf16 = parse_config(replace(kValid, "    max_batch: 8\n", "    max_batch: 8\n    backend: onednn\n    precision: bf16\n"), "test.yaml");
  ASSERT_TRUE(bf16.ok()) << bf16.error().message;
  EXPECT_EQ(bf16->models.at("faces").precision(), Precision::bf16);
  EXPECT_EQ(bf16->models.at("faces").backend(), BackendKind::onednn);
  EXPECT_NE(error_of(replace(kValid, "    max_batch: 8\n", "    max_batch: 8\n    kind: yolov5\n")).find("models.faces.kind"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "    max_batch: 8\n", "    max_batch: 8\n    kind: yolo\n    nms: weighted\n"))
                .find("not a setting of a yolo (kinds with it: blazeface)"),
            std::string::npos);
  // A YOLO detector finds no faces to embed: no embedding by default, an error when asked.
  const std::string yolo_and_embedder =
      replace(replace(kValid, "    input_size: 256\n", "    kind: yolo\n"), "    max_batch: 8\n",
              "    max_batch: 8\n  embedder: {kind: face_embedder, path: /models/face.onnx}\n");
  auto config = parse_config(yolo_and_embedder, "test.yaml");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_TRUE(config->cameras[0].faces_model.empty());
  EXPECT_NE(error_of(replace(yolo_and_embedder, "detect: {model: faces, every: 2}", "detect: {model: faces, every: 2}\n    faces: true"))
                .find("faces are embedded from a face detector's keypoints"),
            std::string::npos);
}

}  // namespace
}  // namespace vigil

namespace vigil {
namespace {

TEST(ConfigLoaderTest, HttpSectionAndItsErrors) {
  setenv("VIGIL_TEST_TOKEN", "from-env", 1);
  auto config = parse_config(std::string(kValid) + "http: {listen: \"0.0.0.0:9090\", token: \"${VIGIL_TEST_TOKEN}\", threads: 3}\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->http.host, "0.0.0.0");
  EXPECT_EQ(config->http.port, 9090);
  EXPECT_EQ(config->http.token, "from-env");
  EXPECT_EQ(config->http.threads, 3);
  auto v6 = parse_config(std::string(kValid) + "http: {listen: \"[::1]:0\"}\n");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(v6->http.host, "::1");
  EXPECT_EQ(v6->http.port, 0);
  EXPECT_TRUE(parse_config(kValid)->http.host.empty());
  EXPECT_NE(error_of(std::string(kValid) + "http: {listen: \"8080\"}\n").find("http.listen: expected HOST:PORT"), std::string::npos);
  EXPECT_NE(error_of(std::string(kValid) + "http: {listen: \"h:99999\"}\n").find("http.listen: port"), std::string::npos);
  EXPECT_NE(error_of(std::string(kValid) + "http: {listen: \"h:1\", tokn: x}\n").find("http.tokn: unknown key"), std::string::npos);
  EXPECT_NE(error_of(std::string(kValid) + "http: {token: x}\n").find("http.listen: required"), std::string::npos);
}

TEST(ConfigLoaderTest, StoreSection) {
  auto config = parse_config(std::string(kValid) + "store: {max_age_days: 2}\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->store.path, "out/vigil.db");
  EXPECT_DOUBLE_EQ(config->store.max_age_days, 2.0);
  EXPECT_TRUE(parse_config(kValid)->store.path.empty());
  EXPECT_NE(error_of(std::string(kValid) + "store: {max_mb: -1}\n").find("store.max_mb"), std::string::npos);
  EXPECT_NE(error_of(std::string(kValid) + "store: {pth: x}\n").find("store.pth: unknown key"), std::string::npos);
}

// What POST /api/v1/cameras takes: one camera in the config's schema, as JSON.
TEST(ConfigLoaderTest, OneCameraFromJson) {
  auto config = parse_config(kValid);
  ASSERT_TRUE(config.ok());
  auto camera = parse_camera_config(R"({"id": "porch", "source": {"type": "synthetic", "fps": 5}, "detect": {"every": 2}})", *config);
  ASSERT_TRUE(camera.ok()) << camera.error().message;
  EXPECT_EQ(camera->id, "porch");
  EXPECT_EQ(camera->source.type, SourceType::synthetic);
  EXPECT_EQ(camera->detect.every, 2);
  auto bad = parse_camera_config(R"({"id": "porch", "source": {"type": "laser"}})", *config, "request body");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("request body: camera.source.type"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(parse_camera_config("{", *config).ok());
}

}  // namespace
}  // namespace vigil
