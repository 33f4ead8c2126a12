// The harvest's stages alone: FaceTracks (tracking and selection) on synthetic frames and
// detections, and JournaledModels (the journal in front of the models) with a fake detector
// and the real face-api embedder, recording and then replaying a run.
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

FaceTracksConfig config(int best_k) {
  FaceTracksConfig c;
  c.select.best_k = best_k;
  c.select.every_s = 0;
  return c;
}

const FaceTemplate& kTemplate = dlib_face_template();

TEST(FaceTracksTest, TwoPeopleGetIdsInOrderOfAppearanceAndTheirBestFacesWaitForTheEmbedderUntilTheirTracksEnd) {
  auto pool = make_frame_pool();
  FaceTracks tracks(config(3), kTemplate, 4);
  tracks.start_input(0);
  for (std::uint64_t seq = 0; seq < 10; ++seq) {
    TestFrame f(*pool, seq, 80);
    Detections d{face_at(20 + seq, 30), face_at(200 - seq, 60)};
    tracks.track(f.frame, d);
    EXPECT_GT(d[0].track_id, 0u);
    EXPECT_NE(d[0].track_id, d[1].track_id);
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
  for (std::uint64_t seq = 0; seq < 6; ++seq) {
    TestFrame f(*pool, seq, seq < 3 ? 40 : 220);  // a new scene at frame 3, the face where it was
    Detections d{face_at(100, 50)};
    tracks.track(f.frame, d);
    if (seq == 2) {
      EXPECT_TRUE(tracks.to_embed().empty());
    }
    if (seq == 3) {
      EXPECT_EQ(tracks.to_embed().size(), 2u) << "the cut ended the first track";
    }
  }
  EXPECT_EQ(tracks.counts().shot_cuts, 1u);
  tracks.end_input();
  tracks.start_input(1);
  TestFrame f(*pool, 0, 220);
  Detections d{face_at(100, 50)};
  tracks.track(f.frame, d);
  tracks.end_input();
  ASSERT_EQ(tracks.tracks().size(), 3u);
  EXPECT_EQ(tracks.tracks().at(2).first_frame, 3u) << "after the cut, someone else";
  EXPECT_EQ(tracks.tracks().at(3).input, 1u);
  EXPECT_EQ(tracks.counts().shot_cuts, 1u) << "a new input is not a cut";
  EXPECT_EQ(tracks.to_embed().size(), 5u);
}

// Finds one face per frame, placed by the frame's seq; counts its calls.
class CountingDetector final : public Detector {
 public:
  explicit CountingDetector(std::atomic<int>& calls) : calls_(calls) {}
  Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override {
    ++calls_;
    results.assign(images.size(), {});
    for (std::size_t i = 0; i < images.size(); ++i) results[i].push_back(face_at(10 + float(i), 20));
    return {};
  }
  int max_batch() const override { return 4; }

 private:
  std::atomic<int>& calls_;
};

// A fake detector and the real embedder on a pool, behind the journal in `dir` opened with
// `fingerprint` (ok() says whether it opened).
struct Harness {
  std::atomic<int> calls{0};  // the detector's
  CpuGovernor governor{1, false};
  std::unique_ptr<ModelPool> pool;
  std::vector<std::string> records;
  Result<std::unique_ptr<Journal>> journal;
  std::unique_ptr<JournaledModels> models;
  Harness(const std::filesystem::path& dir, const std::string& fingerprint)
      : journal(open_harvest_journal(dir.string(), fingerprint, records)) {
    std::vector<std::unique_ptr<Detector>> detectors;
    std::vector<std::unique_ptr<FaceEmbedder>> embedders;
    detectors.push_back(std::make_unique<CountingDetector>(calls));
    auto embedder = FaceEmbedder::create({test::data_file("models/face_recognition_128.onnx"), 4});
    EXPECT_TRUE(embedder.ok()) << embedder.error().message;
    embedders.push_back(std::move(embedder).value());
    pool = std::make_unique<ModelPool>(std::move(detectors), std::move(embedders), governor);
    models = std::make_unique<JournaledModels>(*pool, 128);
    if (journal.ok()) models->resume_from(**journal, records);
  }
  std::size_t chip_values() { return static_cast<std::size_t>(pool->embedder().face_template().size * pool->embedder().face_template().size * 3); }
};

std::unique_ptr<ModelCall> detect_call(std::deque<TestFrame>& frames, std::size_t first, std::size_t n) {
  auto call = std::make_unique<ModelCall>();
  for (std::size_t i = first; i < first + n; ++i) {
    call->job.frames.push_back(frames[i].ref);
  }
  return call;
}

TEST(JournaledModelsTest, ARunsCallsAreRecordedAndAResumedRunTakesThemFromTheJournalWithoutTheModels) {
  test::TempDir dir;
  auto pool = make_frame_pool();
  std::deque<TestFrame> frames;
  for (std::uint64_t s = 0; s < 8; ++s) frames.emplace_back(*pool, s, 100);
  const std::string fingerprint = R"({"inputs":["a.mp4"]})";
  std::vector<Detections> first_detections;
  Embedding first_embedding;
  KeptFace face;
  face.candidate.face_id = 7;
  {
    Harness first(dir.path(), fingerprint);
    ASSERT_TRUE(first.journal.ok()) << first.journal.error().message;
    auto d = detect_call(frames, 0, 4);
    ASSERT_TRUE(first.models->detect(*d).ok());
    auto e = std::make_unique<ModelCall>();
    face.chip.assign(first.chip_values(), 90);
    e->faces.push_back(face);
    first.models->embed(*e);
    ASSERT_TRUE(first.models->finish(*d).ok());
    ASSERT_TRUE(first.models->finish(*e).ok());
    EXPECT_EQ(first.calls.load(), 1);
    EXPECT_FALSE(d->replayed);
    first_detections = d->job.detections;
    first_embedding = e->job.embeddings.at(0);
  }
  Harness resumed(dir.path(), fingerprint);
  ASSERT_TRUE(resumed.journal.ok()) << resumed.journal.error().message;
  ASSERT_EQ(resumed.records.size(), 2u) << "one detection batch and one embedding batch after the header";
  JournaledModels& models = *resumed.models;
  EXPECT_TRUE(models.replaying());
  auto d = detect_call(frames, 0, 4);
  ASSERT_TRUE(models.detect(*d).ok());
  EXPECT_TRUE(d->replayed);
  auto e = std::make_unique<ModelCall>();
  e->faces.push_back(face);
  models.embed(*e);
  ASSERT_TRUE(models.finish(*d).ok());
  ASSERT_TRUE(models.finish(*e).ok());
  EXPECT_EQ(resumed.calls.load(), 0) << "the models ran nothing";
  ASSERT_EQ(d->job.detections.size(), 4u);
  EXPECT_EQ(d->job.detections[3][0].bbox.x1, first_detections[3][0].bbox.x1);
  ASSERT_EQ(e->job.embeddings.at(0).size(), 128u);
  EXPECT_TRUE(std::equal(first_embedding.begin(), first_embedding.end(), e->job.embeddings.at(0).begin())) << "bit for bit";
  EXPECT_EQ(models.resumed_frames(), 4u);
  EXPECT_EQ(models.resumed_embedder_calls(), 1u);
  EXPECT_FALSE(models.replaying());
  auto next = detect_call(frames, 4, 4);
  ASSERT_TRUE(models.detect(*next).ok());
  ASSERT_TRUE(models.finish(*next).ok());
  EXPECT_EQ(resumed.calls.load(), 1) << "past the journal, the models run again";
}

TEST(JournaledModelsTest, AJournalOfOtherFramesOrOfAnotherHarvestIsRefused) {
  test::TempDir dir;
  auto pool = make_frame_pool();
  std::deque<TestFrame> frames;
  for (std::uint64_t s = 0; s < 4; ++s) frames.emplace_back(*pool, s, 100);
  {
    Harness first(dir.path(), "one");
    ASSERT_TRUE(first.journal.ok());
    auto d = detect_call(frames, 0, 2);
    ASSERT_TRUE(first.models->detect(*d).ok());
    ASSERT_TRUE(first.models->finish(*d).ok());
  }
  {
    Harness other(dir.path(), "two");
    ASSERT_FALSE(other.journal.ok());
    EXPECT_EQ(other.journal.error().code, ErrorCode::failed_precondition);
    EXPECT_NE(other.journal.error().message.find("other inputs or settings"), std::string::npos);
  }
  Harness resumed(dir.path(), "one");
  ASSERT_TRUE(resumed.journal.ok());
  auto shifted = detect_call(frames, 1, 2);
  const Status refused = resumed.models->detect(*shifted);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::data_loss);
  EXPECT_EQ(resumed.calls.load(), 0);
}

}  // namespace
}  // namespace vigil
