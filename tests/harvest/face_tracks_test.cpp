// The harvest's stages alone: FaceTracks (selection) on synthetic frames, detections and
// ByteTrack (the engine's tracker, as the engine drives it), and the journal in front of the
// models (DetectionJournal, JournaledModels with the real face-api embedder), recording and
// then replaying a run.
#include "vigil/harvest/face_tracks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <filesystem>
#include <memory>
#include <vector>

#include "support/test_support.h"
#include "vigil/harvest/journaled_models.h"
#include "vigil/track/byte_tracker.h"

namespace vigil {
namespace {

constexpr int kWidth = 320, kHeight = 180;

// A BGR frame of one grey level (its pixels live as long as the TestFrame).
struct TestFrame {
  std::vector<std::uint8_t> pixels;
  FrameRef ref;
  const Frame& frame;
  TestFrame(FramePool& pool, std::uint64_t seq, int grey)
      : pixels(static_cast<std::size_t>(kWidth * kHeight * 3), static_cast<std::uint8_t>(grey)), ref(pool.acquire()), frame(*ref) {
    Frame& f = *ref.mutable_get();
    f.seq = seq;
    f.pts_ms = static_cast<std::int64_t>(seq) * 100;
    f.image.format = PixelFormat::bgr24;
    f.image.width = kWidth;
    f.image.height = kHeight;
    f.image.planes[0] = {pixels.data(), kWidth * 3};
  }
};

// A face at (x, y), 40 px wide, with BlazeFace's six keypoints; score sets its size a little
// (so faces differ in quality).
Detection face_at(float x, float y, float score = 0.9f) {
  Detection d;
  const float s = 40 * score;
  d.bbox = {x, y, x + s, y + s};
  d.score = score;
  d.keypoint_count = 6;
  d.keypoints = {Point2{x + 0.3f * s, y + 0.35f * s}, Point2{x + 0.7f * s, y + 0.35f * s}, Point2{x + 0.5f * s, y + 0.55f * s},
                 Point2{x + 0.5f * s, y + 0.75f * s}, Point2{x + 0.05f * s, y + 0.4f * s}, Point2{x + 0.95f * s, y + 0.4f * s}};
  return d;
}

FaceSelectorConfig config(int best_k) {
  FaceSelectorConfig c;
  c.best_k = best_k;
  c.every_s = 0;
  return c;
}

// The engine's part: each frame tracked (a shot cut ends every track first), as its result.
struct Tracked {
  ByteTracker tracker{TrackerConfig{}};
  FrameResult result;
  const FrameResult& track(const TestFrame& f, Detections d, bool cut = false) {
    result.frame = f.ref;
    result.detected = true;
    result.tracked = true;
    result.detections = std::move(d);
    result.tracks.clear();
    result.track_events.clear();
    if (cut) tracker.end_all(result.track_events);
    tracker.update(result.detections, 1, result.tracks, result.track_events);
    return result;
  }
};

const FaceTemplate& kTemplate = dlib_face_template();

TEST(FaceTracksTest, TwoPeopleGetIdsInOrderOfAppearanceAndTheirBestFacesWaitForTheEmbedderUntilTheirTracksEnd) {
  auto pool = make_frame_pool();
  FaceTracks tracks(config(3), kTemplate, 4);
  tracks.start_input(0);
  Tracked engine;
  for (std::uint64_t seq = 0; seq < 10; ++seq) {
    TestFrame f(*pool, seq, 80);
    const FrameResult& r = engine.track(f, {face_at(20 + seq, 30), face_at(200 - seq, 60)});
    tracks.track(r);
    EXPECT_GT(r.detections[0].track_id, 0u);
    EXPECT_NE(r.detections[0].track_id, r.detections[1].track_id);
  }
  EXPECT_TRUE(tracks.to_embed().empty()) << "both tracks are still open";
  tracks.end_input();
  std::vector<KeptFace>& waiting = tracks.to_embed();
  ASSERT_EQ(waiting.size(), 6u) << "the best 3 of each track";
  EXPECT_EQ(waiting[0].candidate.track_id, 1u);
  EXPECT_EQ(waiting[5].candidate.track_id, 2u);
  EXPECT_EQ(waiting[0].chip.size(), static_cast<std::size_t>(kTemplate.size * kTemplate.size * 3));
  std::vector<KeptFace> batch(std::make_move_iterator(waiting.begin()), std::make_move_iterator(waiting.end()));
  waiting.clear();
  std::vector<Embedding> embeddings;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Embedding& e = embeddings.emplace_back(4);
    e[0] = float(i);
    e[3] = 1;
  }
  tracks.add_embedded(batch, embeddings);
  ASSERT_EQ(tracks.tracks().size(), 2u);
  const TrackRecord& first = tracks.tracks().at(1);
  EXPECT_EQ(first.faces_detected, 10u);
  EXPECT_EQ(first.embedded.size(), 3u);
  EXPECT_EQ(first.first_frame, 0u);
  EXPECT_EQ(first.last_frame, 9u);
  ASSERT_EQ(tracks.faces().size(), 6u);
  EXPECT_EQ(tracks.faces()[4].row, 4u);
  EXPECT_EQ(tracks.embeddings().size(), 24u);
  EXPECT_EQ(tracks.embeddings()[4 * 4], 4.0f) << "row 4 holds the fifth face's embedding";
  EXPECT_EQ(tracks.counts().sampled, 10u);
  EXPECT_EQ(tracks.counts().faces_detected, 20u);
  EXPECT_EQ(tracks.counts().faces_embedded, 6u);
}

TEST(FaceTracksTest, AShotCutEndsEveryTrackAndTheNextInputContinuesTheIds) {
  auto pool = make_frame_pool();
  FaceTracks tracks(config(2), kTemplate, 4);
  tracks.start_input(0);
  Tracked engine;
  for (std::uint64_t seq = 0; seq < 6; ++seq) {
    TestFrame f(*pool, seq, seq < 3 ? 40 : 220);  // a new scene at frame 3, the face where it was
    tracks.track(engine.track(f, {face_at(100, 50)}, seq == 3));
    if (seq == 2) {
      EXPECT_TRUE(tracks.to_embed().empty());
    }
    if (seq == 3) {
      EXPECT_EQ(tracks.to_embed().size(), 2u) << "the cut ended the first track";
    }
  }
  tracks.end_input();
  tracks.start_input(1);
  Tracked next_input;  // its track ids start again at 1
  TestFrame f(*pool, 0, 220);
  tracks.track(next_input.track(f, {face_at(100, 50)}));
  tracks.end_input();
  ASSERT_EQ(tracks.tracks().size(), 3u);
  EXPECT_EQ(tracks.tracks().at(2).first_frame, 3u) << "after the cut, someone else";
  EXPECT_EQ(tracks.tracks().at(3).input, 1u) << "the next input's first track, not the first input's track 1";
  EXPECT_EQ(tracks.tracks().at(1).faces_detected, 3u);
  EXPECT_EQ(tracks.to_embed().size(), 5u);
}

// The real embedder on a pool, behind the journal in `dir` opened with `fingerprint` (ok()
// says whether it opened).
struct Harness {
  CpuGovernor governor{1, false};
  std::unique_ptr<ModelPool> pool;
  std::vector<std::string> records;
  Result<std::unique_ptr<Journal>> journal;
  DetectionJournal detections;
  std::unique_ptr<JournaledModels> models;
  Harness(const std::filesystem::path& dir, const std::string& fingerprint)
      : journal(open_harvest_journal(dir.string(), fingerprint, records)) {
    std::vector<std::unique_ptr<FaceEmbedder>> embedders;
    auto embedder = FaceEmbedder::create({test::data_file("models/face_recognition_128.onnx"), 4});
    EXPECT_TRUE(embedder.ok()) << embedder.error().message;
    embedders.push_back(std::move(embedder).value());
    pool = std::make_unique<ModelPool>(std::move(embedders), governor);
    models = std::make_unique<JournaledModels>(*pool, 128);
    if (journal.ok()) {
      detections.resume_from(**journal, records);
      models->resume_from(**journal, records);
    }
  }
  std::size_t chip_values() { return static_cast<std::size_t>(pool->embedder().face_template().size * pool->embedder().face_template().size * 3); }
};

// What a detector found in a run of frames: one face each, placed by the frame.
std::vector<Detections> found_in(const std::vector<std::uint64_t>& seqs) {
  std::vector<Detections> found;
  for (std::uint64_t s : seqs) found.push_back({face_at(10 + float(s), 20)});
  return found;
}

TEST(JournaledModelsTest, ARunsCallsAreRecordedAndAResumedRunTakesThemFromTheJournalWithoutTheModels) {
  test::TempDir dir;
  const std::string fingerprint = R"({"inputs":["a.mp4","b.mp4"]})";
  const std::vector<std::uint64_t> run{0, 2, 4, 6}, later{8, 10};
  Embedding first_embedding;
  KeptFace face;
  face.candidate.face_id = 7;
  {
    Harness first(dir.path(), fingerprint);
    ASSERT_TRUE(first.journal.ok()) << first.journal.error().message;
    std::vector<Detections> out;
    EXPECT_FALSE(first.detections.replay(1, run, out)) << "a new journal answers nothing";
    first.detections.record(1, run, found_in(run));
    auto e = std::make_unique<ModelCall>();
    face.chip.assign(first.chip_values(), 90);
    e->faces.push_back(face);
    first.models->embed(*e);
    ASSERT_TRUE(first.models->finish(*e).ok());
    EXPECT_FALSE(e->replayed);
    first_embedding = e->job.embeddings.at(0);
    EXPECT_TRUE(first.detections.finish_input(1).ok());
  }
  Harness resumed(dir.path(), fingerprint);
  ASSERT_TRUE(resumed.journal.ok()) << resumed.journal.error().message;
  ASSERT_EQ(resumed.records.size(), 2u) << "one detection run and one embedding batch after the header";
  EXPECT_TRUE(resumed.detections.replaying());
  std::vector<Detections> out;
  EXPECT_FALSE(resumed.detections.replay(0, run, out)) << "the same frames of the other input";
  ASSERT_TRUE(resumed.detections.replay(1, run, out));
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[3][0].bbox.x1, 16.0f) << "frame 6's face";
  EXPECT_FALSE(resumed.detections.replaying());
  EXPECT_EQ(resumed.detections.resumed_frames(), 4u);
  EXPECT_FALSE(resumed.detections.replay(1, later, out)) << "past the journal, the model runs again";
  auto e = std::make_unique<ModelCall>();
  e->faces.push_back(face);
  resumed.models->embed(*e);
  ASSERT_TRUE(resumed.models->finish(*e).ok());
  EXPECT_TRUE(e->replayed) << "the embedder ran nothing";
  ASSERT_EQ(e->job.embeddings.at(0).size(), 128u);
  EXPECT_TRUE(std::equal(first_embedding.begin(), first_embedding.end(), e->job.embeddings.at(0).begin())) << "bit for bit";
  EXPECT_EQ(resumed.models->resumed_embedder_calls(), 1u);
  EXPECT_TRUE(resumed.detections.finish_input(0).ok());
  EXPECT_TRUE(resumed.detections.finish_input(1).ok());
}

TEST(JournaledModelsTest, AJournalOfOtherFramesOrOfAnotherHarvestIsRefused) {
  test::TempDir dir;
  const std::vector<std::uint64_t> run{0, 1};
  {
    Harness first(dir.path(), "one");
    ASSERT_TRUE(first.journal.ok());
    first.detections.record(0, run, found_in(run));
  }
  {
    Harness other(dir.path(), "two");
    ASSERT_FALSE(other.journal.ok());
    EXPECT_EQ(other.journal.error().code, ErrorCode::failed_precondition);
    EXPECT_NE(other.journal.error().message.find("other inputs or settings"), std::string::npos);
  }
  {
    Harness shifted(dir.path(), "one");
    ASSERT_TRUE(shifted.journal.ok());
    std::vector<Detections> out;
    EXPECT_FALSE(shifted.detections.replay(0, std::vector<std::uint64_t>{1, 2}, out));
    const Status refused = shifted.detections.finish_input(0);
    ASSERT_FALSE(refused.ok()) << "a run of the input the journal holds was never asked for";
    EXPECT_EQ(refused.error().code, ErrorCode::data_loss);
  }
  Harness longer(dir.path(), "one");
  ASSERT_TRUE(longer.journal.ok());
  std::vector<Detections> out;
  EXPECT_FALSE(longer.detections.replay(0, std::vector<std::uint64_t>{0, 1, 2}, out)) << "a run of other frames from the same one";
  EXPECT_EQ(longer.detections.finish_input(0).error().code, ErrorCode::data_loss);
}

TEST(JournaledModelsTest, ADamagedDetectionRecordIsFoundWhenItsRunIsAskedFor) {
  test::TempDir dir;
  const std::vector<std::uint64_t> run{0, 1};
  {
    Harness first(dir.path(), "one");
    ASSERT_TRUE(first.journal.ok());
    const std::string record = encode_detections(0, 0, found_in(run));
    ASSERT_TRUE((*first.journal)->append(std::string_view(record).substr(0, record.size() - 3)).ok()) << "whole in the journal, cut inside";
  }
  Harness resumed(dir.path(), "one");
  ASSERT_TRUE(resumed.journal.ok());
  EXPECT_TRUE(resumed.detections.replaying()) << "indexed by its input and first frame alone";
  std::vector<Detections> out;
  EXPECT_FALSE(resumed.detections.replay(0, run, out));
  const Status refused = resumed.detections.finish_input(0);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::data_loss);
}

}  // namespace
}  // namespace vigil
