// The engine's face stage with the real models: BlazeFace 256 and the converted face
// descriptor ResNet, on synthetic cameras over face-api's sample photos.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "support/test_support.h"
#include "vigil/pipeline/engine.h"

namespace vigil {
namespace {

EngineConfig faces_config(const std::string& gallery = "") {
  EngineConfig config;
  ModelConfig detector;
  detector.settings.model_path = test::data_file("models/blazeface_back_256_dyn.onnx");
  detector.settings.input_size = 256;
  detector.settings.max_batch = 4;
  config.models["faces"] = detector;
  ModelConfig embedder;
  embedder.kind = "face_embedder";
  embedder.settings.model_path = test::data_file("models/face_recognition_128.onnx");
  embedder.settings.max_batch = 16;
  embedder.max_delay_ms = 5;
  config.models["embedder"] = embedder;
  config.workers = 2;
  config.inference_threads = 1;
  config.status_interval_s = 0;
  config.gallery = gallery;
  return config;
}

// An H.264 file of `frames` frames: the photo, 960 wide, sliding 2 px per frame.
std::string photo_video(const test::TempDir& dir, int photo, int frames) {
  const std::string out = dir.file("photo" + std::to_string(photo) + ".mp4");
  std::string output;
  const int rc = test::run_command("ffmpeg -nostdin -v error -y -loop 1 -i " +
                                       test::data_file("media/sample" + std::to_string(photo) + ".jpg") +
                                       " -vf \"scale=1040:-2,crop=960:ih-16:'2*n':8\" -frames:v " + std::to_string(frames) +
                                       " -r 15 -c:v libx264 -preset ultrafast -pix_fmt yuv420p " + out,
                                   &output);
  EXPECT_EQ(rc, 0) << output;
  return out;
}

CameraConfig photo_camera(const std::string& id, const std::string& path) {
  CameraConfig c;
  c.id = id;
  c.source.type = SourceType::file;
  c.source.url = path;
  c.source.live = false;  // every frame, in order
  c.detect.model = "faces";
  c.faces_model = "embedder";
  return c;
}

struct Seen {
  std::mutex mu;
  std::map<std::string, std::vector<std::uint64_t>> seqs;
  std::map<std::string, std::size_t> tracks_with_identity, tracks_total;
  std::size_t faces = 0;
};

// Hooks that record every result in `seen`.
EngineHooks seeing(Seen& seen) {
  EngineHooks hooks;
  hooks.on_result = [&seen](const FrameResult& r) {
    std::lock_guard lock(seen.mu);
    seen.seqs[*r.frame->camera].push_back(r.frame->seq);
    seen.faces += r.faces.size();
    for (const TrackedObject& t : r.tracks) {
      ++seen.tracks_total[*r.frame->camera];
      if (!t.identity.empty()) ++seen.tracks_with_identity[*r.frame->camera];
    }
  };
  return hooks;
}

TEST(FaceStageTest, TracksAreEmbeddedOnlyWhenNewOrBetterAndResultsStayInOrder) {
  EngineConfig config = faces_config();
  const int frames = 40;
  test::TempDir dir;
  for (int i = 0; i < 4; ++i) {
    config.cameras.push_back(photo_camera("cam" + std::to_string(i), photo_video(dir, 3 + i, frames)));
  }
  Seen seen;
  auto engine = Engine::create(config, seeing(seen));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  auto chain = (*engine)->pipeline("cam0");
  ASSERT_TRUE(chain.ok());
  EXPECT_EQ(describe(*chain),
            "capture cam0 -[queue 4]-> detect faces (batch<=4, 2 ms; +detections) -> track (+tracks)"
            " -[queue 1]-> embed embedder (batch<=16, 5 ms; +faces +identities) -> deliver");
  std::mutex events_mu;
  std::size_t identity_events = 0;
  (*engine)->events().subscribe([&](const Event& e) {
    if (e.kind == EventKind::identity_matched) {
      std::lock_guard lock(events_mu);
      ++identity_events;
      EXPECT_FALSE(e.detail.empty());
      EXPECT_NE(e.track_id, 0u);
      // The face it came from, as a JPEG (starts with the SOI marker, a few KB).
      ASSERT_TRUE(e.face_jpeg);
      ASSERT_GT(e.face_jpeg->size(), 500u);
      EXPECT_EQ((*e.face_jpeg)[0], 0xff);
      EXPECT_EQ((*e.face_jpeg)[1], 0xd8);
    }
  });
  ASSERT_TRUE((*engine)->run(120.0).ok());
  const EngineStatus st = (*engine)->status();
  std::uint64_t detected = 0, embedded = 0, tracks = 0, changed = 0;
  for (const CameraStatus& c : st.cameras) {
    EXPECT_EQ(c.frames_inferred, static_cast<std::uint64_t>(frames)) << c.id;
    detected += c.faces_detected;
    embedded += c.faces_embedded;
    tracks += c.tracks_started;
    changed += c.identities_changed;
    const auto& seqs = seen.seqs[c.id];
    ASSERT_EQ(seqs.size(), static_cast<std::size_t>(frames)) << c.id;
    for (std::size_t i = 1; i < seqs.size(); ++i) EXPECT_LT(seqs[i - 1], seqs[i]) << c.id;
    // Once embedded, tracks carry their identity: most track boxes of the run have one.
    EXPECT_GT(seen.tracks_with_identity[c.id] * 2, seen.tracks_total[c.id]) << c.id;
  }
  EXPECT_GT(tracks, 8u);
  EXPECT_GE(embedded, tracks / 2);
  EXPECT_LE(embedded * 8, detected) << "the embedder should run far less often than the detector";
  EXPECT_EQ(seen.faces, embedded);
  EXPECT_EQ(identity_events, changed);
  EXPECT_GT(changed, 0u);
  const ModelStatus* model = nullptr;
  for (const auto& m : st.models) {
    if (m.name == "embedder") model = &m;
  }
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->items, embedded);
  EXPECT_GE(model->batches, 1u);
}

// An H.264 file that cuts between photos every `each` frames (960x720, 15 fps): new faces,
// so new tracks to embed, appear in the middle of the detector's runs of frames.
std::string cutting_video(const test::TempDir& dir, const std::vector<int>& photos, int each) {
  const std::string out = dir.file("cuts.mp4");
  std::string inputs, filter, labels;
  for (std::size_t i = 0; i < photos.size(); ++i) {
    inputs += " -loop 1 -framerate 15 -t " + std::to_string(each / 15.0) + " -i " +
              test::data_file("media/sample" + std::to_string(photos[i]) + ".jpg");
    filter += "[" + std::to_string(i) + "]scale=960:720,setsar=1[v" + std::to_string(i) + "];";
    labels += "[v" + std::to_string(i) + "]";
  }
  filter += labels + "concat=n=" + std::to_string(photos.size()) + ":v=1:a=0";
  std::string output;
  const int rc = test::run_command("ffmpeg -nostdin -v error -y" + inputs + " -filter_complex \"" + filter +
                                       "\" -r 15 -c:v libx264 -preset ultrafast -pix_fmt yuv420p " + out,
                                   &output);
  EXPECT_EQ(rc, 0) << output;
  return out;
}

// One file camera alone brings runs of frames to the detector; when a frame of a run waits
// for its faces, the frames after it wait behind it: every result still leaves once, in order.
TEST(FaceStageTest, OneFileCameraKeepsOrderWhenAFrameOfARunWaitsForItsFaces) {
  EngineConfig config = faces_config();
  test::TempDir dir;
  config.cameras.push_back(photo_camera("solo", cutting_video(dir, {3, 4, 5, 6}, 10)));
  Seen seen;
  auto engine = Engine::create(config, seeing(seen));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  ASSERT_TRUE((*engine)->run(120.0).ok());
  const EngineStatus st = (*engine)->status();
  ASSERT_EQ(st.cameras.size(), 1u);
  const std::uint64_t frames = st.cameras[0].frames_decoded;
  EXPECT_GE(frames, 38u);
  EXPECT_EQ(st.cameras[0].frames_inferred, frames);
  EXPECT_GE(st.cameras[0].tracks_started, 4u) << "each cut brings new faces";
  EXPECT_GE(st.cameras[0].faces_embedded, 4u);
  EXPECT_EQ(seen.faces, st.cameras[0].faces_embedded);
  const auto& seqs = seen.seqs["solo"];
  ASSERT_EQ(seqs.size(), frames);
  for (std::size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i);
  for (const auto& m : st.models) {
    if (m.name == "faces") {
      EXPECT_LT(m.batches, frames) << "runs of frames share batches";
    }
  }
}

TEST(FaceStageTest, AGalleryNamesThePeopleInIt) {
  // The gallery's person "p6" is the largest face of sample6.jpg; the camera shows sample6.
  test::TempDir dir;
  std::filesystem::create_directories(dir.path() / "people" / "p6");
  std::filesystem::copy_file(test::data_file("media/sample6.jpg"), dir.path() / "people" / "p6" / "a.jpg");
  EngineConfig config = faces_config(dir.file("people"));
  config.cameras.push_back(photo_camera("room", photo_video(dir, 6, 20)));
  std::mutex mu;
  std::vector<Event> named;
  auto engine = Engine::create(config);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  (*engine)->events().subscribe([&](const Event& e) {
    std::lock_guard lock(mu);
    if (e.kind == EventKind::identity_matched && e.known) named.push_back(e);
  });
  ASSERT_TRUE((*engine)->run(120.0).ok());
  ASSERT_EQ(named.size(), 1u) << "exactly one of the four people is in the gallery";
  EXPECT_EQ(named[0].detail, "p6");
  EXPECT_GE(named[0].similarity, 0.92f);
}

TEST(FaceStageTest, AGalleryWithoutFacesIsAClearError) {
  test::TempDir dir;
  std::filesystem::create_directories(dir.path() / "people" / "nobody");
  EngineConfig config = faces_config(dir.file("people"));
  config.workers = 1;  // one instance of each model is enough to find no face
  auto engine = Engine::create(config);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(engine.error().message.find("no face found"), std::string::npos) << engine.error().message;
  auto missing = Engine::create(faces_config(dir.file("missing")));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("not a directory"), std::string::npos) << missing.error().message;
}

}  // namespace
}  // namespace vigil
