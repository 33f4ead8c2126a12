// The engine's face stage with the real models: BlazeFace 256 and the converted face
// descriptor ResNet, on synthetic cameras over face-api's sample photos.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "support/test_support.h"
#include "vigil/infer/backend.h"
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

// What a run with best faces per track handed over: its results' tracks and its batches of
// kept faces, in the order they came.
struct Kept {
  std::mutex mu;
  std::set<std::uint64_t> tracks_seen;            // in delivered results, so far
  std::map<std::uint64_t, std::size_t> detected;  // tracked faces per track
  std::size_t results = 0, results_with_faces = 0;
  std::vector<FaceBatch> batches;                 // as handed over (chips dropped)
  bool every_track_seen_first = true;
};

EngineHooks keeping(Kept& kept) {
  EngineHooks hooks;
  hooks.on_result = [&kept](const FrameResult& r) {
    std::lock_guard lock(kept.mu);
    ++kept.results;
    if (!r.faces.empty()) ++kept.results_with_faces;
    for (const TrackedObject& t : r.tracks) {
      if (t.predicted || t.detection < 0) continue;
      kept.tracks_seen.insert(t.track_id);
      ++kept.detected[t.track_id];
    }
  };
  hooks.on_faces = [&kept](const std::string& camera, FaceBatch& batch) {
    std::lock_guard lock(kept.mu);
    EXPECT_EQ(camera, "solo");
    for (KeptFace& f : batch.faces) {
      if (!kept.tracks_seen.contains(f.candidate.track_id)) kept.every_track_seen_first = false;
      f.chip.clear();
    }
    kept.batches.push_back(std::move(batch));
  };
  return hooks;
}

// One file of four shots, offline, each track's best two faces kept and embedded four at a time.
EngineConfig best_faces_config(const test::TempDir& dir) {
  EngineConfig config = faces_config();
  config.offline = true;
  config.models["embedder"].settings.max_batch = 4;
  CameraConfig camera = photo_camera("solo", cutting_video(dir, {3, 4, 5, 6}, 10));
  camera.track.shot_cut = 12;
  camera.best_faces = FaceSelectorConfig{2, 0, false};
  config.cameras.push_back(camera);
  return config;
}

const ModelStatus& model_status(const EngineStatus& st, const std::string& name) {
  const auto it = std::find_if(st.models.begin(), st.models.end(), [&](const ModelStatus& m) { return m.name == name; });
  EXPECT_NE(it, st.models.end()) << name;
  return *it;
}

// The harvest's face policy as an engine stage: the frames go on at once, each track's best
// faces are kept and embedded in full batches across tracks when the tracks end (the last one
// when the file ends), and handed over in order, after the frames they came from.
TEST(FaceStageTest, EachTracksBestFacesAreEmbeddedInBatchesWhenTracksEnd) {
  test::TempDir dir;
  const EngineConfig config = best_faces_config(dir);
  Kept kept;
  auto engine = Engine::create(config, keeping(kept));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  EXPECT_EQ(describe(*(*engine)->pipeline("solo")),
            "capture solo -[queue 4]-> detect faces (runs of 4; +detections) -> track (+tracks) -> select best faces -> deliver"
            " -[queue 4]-> embed embedder");
  ASSERT_TRUE((*engine)->run(120.0).ok());
  const EngineStatus st = (*engine)->status();
  std::lock_guard lock(kept.mu);
  EXPECT_EQ(kept.results, st.cameras[0].frames_decoded) << "no frame waited or was lost";
  EXPECT_EQ(kept.results_with_faces, 0u) << "kept faces do not go into the frames' results";
  EXPECT_TRUE(kept.every_track_seen_first);
  ASSERT_GE(kept.batches.size(), 2u);
  std::map<std::uint64_t, std::size_t> per_track;
  std::set<std::uint64_t> face_ids;
  std::size_t faces = 0;
  for (std::size_t b = 0; b < kept.batches.size(); ++b) {
    const FaceBatch& batch = kept.batches[b];
    EXPECT_EQ(batch.seq, b) << "in the order they were formed";
    EXPECT_TRUE(batch.status.ok()) << batch.status.error().message;
    EXPECT_FALSE(batch.replayed);
    if (b + 1 < kept.batches.size()) {
      EXPECT_EQ(batch.faces.size(), 4u) << "full batches but the last";
    }
    ASSERT_EQ(batch.embeddings.size(), batch.faces.size());
    for (std::size_t i = 0; i < batch.faces.size(); ++i) {
      ++per_track[batch.faces[i].candidate.track_id];
      EXPECT_TRUE(face_ids.insert(batch.faces[i].candidate.face_id).second);
      float norm = 0;
      for (float v : batch.embeddings[i]) norm += v * v;
      EXPECT_NEAR(norm, 1.0f, 1e-4f);
    }
    faces += batch.faces.size();
  }
  ASSERT_GE(kept.detected.size(), 4u) << "a track per shot at least";
  for (const auto& [track, n] : kept.detected) EXPECT_EQ(per_track[track], std::min<std::size_t>(n, 2)) << "track " << track;
  EXPECT_EQ(st.cameras[0].faces_embedded, faces);
  EXPECT_EQ(model_status(st, "embedder").items, faces);
  EXPECT_EQ(model_status(st, "embedder").batches, kept.batches.size());
}

// What a journal does for a resumed harvest: every batch answered before the model, in order.
TEST(FaceStageTest, ReplayedBatchesOfKeptFacesSkipTheEmbedder) {
  test::TempDir dir;
  const EngineConfig config = best_faces_config(dir);
  Kept first;
  ASSERT_TRUE(Engine::create(config, keeping(first)).value()->run(120.0).ok());
  Kept again;
  EngineHooks hooks = keeping(again);
  std::size_t asked = 0;
  hooks.replay_faces = [&](const std::string&, FaceBatch& batch) {
    const FaceBatch& recorded = first.batches.at(asked++);
    EXPECT_EQ(batch.seq, recorded.seq);
    EXPECT_EQ(batch.faces.size(), recorded.faces.size());
    batch.embeddings = recorded.embeddings;
    return true;
  };
  auto engine = Engine::create(config, hooks);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  ASSERT_TRUE((*engine)->run(120.0).ok());
  EXPECT_EQ(model_status((*engine)->status(), "embedder").batches, 0u) << "the embedder ran nothing";
  ASSERT_EQ(again.batches.size(), first.batches.size());
  EXPECT_EQ(asked, first.batches.size());
  for (std::size_t b = 0; b < again.batches.size(); ++b) {
    EXPECT_TRUE(again.batches[b].replayed);
    ASSERT_EQ(again.batches[b].faces.size(), first.batches[b].faces.size());
    for (std::size_t i = 0; i < again.batches[b].faces.size(); ++i) {
      EXPECT_EQ(again.batches[b].faces[i].candidate.face_id, first.batches[b].faces[i].candidate.face_id) << "the same faces kept";
    }
  }
}

// A backend whose model answers the embedder's check at load, then fails every call.
class FailingAfterLoad final : public Backend {
 public:
  Status infer(const Tensor& input, std::vector<Tensor>& outputs) override {
    if (++calls_ > 1) return Error{ErrorCode::internal, "the device went away"};
    outputs.resize(1);
    outputs[0].reshape({input.dim(0), 128});
    std::fill(outputs[0].data(), outputs[0].data() + outputs[0].size(), 0.1f);
    return {};
  }
  const std::vector<std::string>& output_names() const override { return names_; }
  std::string name() const override { return "failing"; }

 private:
  int calls_ = 0;
  std::vector<std::string> names_{"embedding"};
};

TEST(FaceStageTest, AnEmbedderFailingOnKeptFacesFailsOnlyThoseBatches) {
  test::TempDir dir;
  const EngineConfig config = best_faces_config(dir);
  Kept kept;
  EngineHooks hooks = keeping(kept);
  hooks.make_embedder = [](const std::string&, const ModelConfig& m) {
    return FaceEmbedder::create({m.model_path(), m.max_batch()}, std::make_unique<FailingAfterLoad>());
  };
  auto engine = Engine::create(config, hooks);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  ASSERT_TRUE((*engine)->run(120.0).ok()) << "a model's error stays with its faces";
  const EngineStatus st = (*engine)->status();
  std::lock_guard lock(kept.mu);
  EXPECT_EQ(kept.results, st.cameras[0].frames_decoded) << "every frame still delivered";
  ASSERT_GE(kept.batches.size(), 2u);
  for (const FaceBatch& batch : kept.batches) {
    ASSERT_FALSE(batch.status.ok());
    EXPECT_NE(batch.status.error().message.find("the device went away"), std::string::npos) << batch.status.error().message;
    EXPECT_TRUE(batch.embeddings.empty());
  }
  EXPECT_EQ(st.cameras[0].stage_errors, kept.batches.size());
  EXPECT_EQ(st.cameras[0].faces_embedded, 0u);
}

TEST(FaceStageTest, BestFacesNeedTrackingAndAnEmbedder) {
  test::TempDir dir;
  EngineConfig config = faces_config();
  CameraConfig camera = photo_camera("solo", photo_video(dir, 3, 2));
  camera.best_faces = FaceSelectorConfig{};
  camera.track.enabled = false;
  config.cameras.push_back(camera);
  auto untracked = Engine::create(config);
  ASSERT_FALSE(untracked.ok());
  EXPECT_EQ(untracked.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(untracked.error().message.find("camera solo: best faces per track need a face_embedder and tracking"), std::string::npos)
      << untracked.error().message;
  config.cameras[0].track.enabled = true;
  config.cameras[0].faces_model.clear();
  EXPECT_FALSE(Engine::create(config).ok());
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
