// The harvest's face policy and records alone: BestFaces (the engine's per-track selection)
// and FaceTracks (the harvest's records) on synthetic frames, detections and ByteTrack (the
// engine's tracker, as the engine drives it), and the journal in front of the models
// (DetectionJournal, EmbeddingJournal), recording and then replaying a run.
#include "vigil/harvest/face_tracks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <filesystem>
#include <functional>
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

// Ten grey frames of two people passing each other, each tracked (ByteTrack) and handed to `each`.
void two_people_pass(const std::function<void(const FrameResult&)>& each) {
  auto pool = make_frame_pool();
  Tracked engine;
  for (std::uint64_t seq = 0; seq < 10; ++seq) {
    TestFrame f(*pool, seq, 80);
    each(engine.track(f, {face_at(20 + float(seq), 30), face_at(200 - float(seq), 60)}));
  }
}

// The embeddings the engine would give: one per face, value i in the first place.
void embed(FaceBatch& batch, std::size_t dim = 4) {
  batch.embeddings.clear();
  for (std::size_t i = 0; i < batch.faces.size(); ++i) {
    Embedding& e = batch.embeddings.emplace_back(dim);
    e[0] = float(i);
    e[dim - 1] = 1;
  }
}

FaceBatch batch_of(std::vector<KeptFace>& faces) {
  FaceBatch batch;
  batch.faces.assign(std::make_move_iterator(faces.begin()), std::make_move_iterator(faces.end()));
  faces.clear();
  embed(batch);
  return batch;
}

TEST(BestFacesTest, EachTracksBestFacesWaitUntilTheTrackEnds) {
  BestFaces best(config(3), kTemplate);
  two_people_pass([&](const FrameResult& r) {
    best.track(r);
    EXPECT_GT(r.detections[0].track_id, 0u);
    EXPECT_NE(r.detections[0].track_id, r.detections[1].track_id);
  });
  EXPECT_TRUE(best.ended().empty()) << "both tracks are still open";
  EXPECT_EQ(best.offered(), 20u);
  best.end_all();
  const std::vector<KeptFace>& ended = best.ended();
  ASSERT_EQ(ended.size(), 6u) << "the best 3 of each track";
  EXPECT_EQ(ended[0].candidate.track_id, 1u);
  EXPECT_EQ(ended[5].candidate.track_id, 2u);
  EXPECT_EQ(ended[0].chip.size(), static_cast<std::size_t>(kTemplate.size * kTemplate.size * 3));
  EXPECT_EQ(ended[0].keypoints.size(), 6u);
  // Equal faces on grey frames: the earliest of equal quality are kept, in face id order.
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(ended[i].frame, i);
    EXPECT_EQ(ended[i].candidate.face_id, 2 * i + 1) << "the first track's faces are the odd ones";
  }
}

TEST(BestFacesTest, AShotCutEndsEveryTrack) {
  auto pool = make_frame_pool();
  BestFaces best(config(2), kTemplate);
  Tracked engine;
  for (std::uint64_t seq = 0; seq < 6; ++seq) {
    TestFrame f(*pool, seq, seq < 3 ? 40 : 220);  // a new scene at frame 3, the face where it was
    best.track(engine.track(f, {face_at(100, 50)}, seq == 3));
    if (seq == 2) {
      EXPECT_TRUE(best.ended().empty());
    }
    if (seq == 3) {
      EXPECT_EQ(best.ended().size(), 2u) << "the cut ended the first track";
    }
  }
  best.end_all();
  ASSERT_EQ(best.ended().size(), 4u);
  EXPECT_EQ(best.ended()[2].candidate.track_id, 2u) << "after the cut, someone else";
}

TEST(FaceTracksTest, TracksAndEmbeddedFacesGetHarvestWideIdsInOrderOfAppearance) {
  FaceTracks tracks(kTemplate, 4);
  tracks.start_input(0);
  EXPECT_EQ(tracks.face_base(), 0u);
  BestFaces best(config(3), kTemplate);
  two_people_pass([&](const FrameResult& r) {
    best.track(r);
    tracks.track(r);
  });
  best.end_all();
  FaceBatch batch = batch_of(best.ended());
  ASSERT_TRUE(tracks.add_embedded(batch).ok());
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

  // The next input: its engine counts tracks and faces from 1 again.
  tracks.start_input(1);
  EXPECT_EQ(tracks.face_base(), 20u) << "the faces offered before it";
  BestFaces next(config(3), kTemplate);
  Tracked next_engine;
  auto pool = make_frame_pool();
  TestFrame f(*pool, 0, 220);
  const FrameResult& r = next_engine.track(f, {face_at(100, 50)});
  next.track(r);
  tracks.track(r);
  next.end_all();
  FaceBatch second = batch_of(next.ended());
  ASSERT_EQ(second.faces.size(), 1u);
  EXPECT_EQ(second.faces[0].candidate.face_id, 1u);
  ASSERT_TRUE(tracks.add_embedded(second).ok());
  ASSERT_EQ(tracks.tracks().size(), 3u);
  EXPECT_EQ(tracks.tracks().at(3).input, 1u) << "the next input's first track, not the first input's track 1";
  const FaceRecord& last = tracks.faces().back();
  EXPECT_EQ(last.face.candidate.face_id, 21u);
  EXPECT_EQ(last.face.candidate.track_id, 3u);
  EXPECT_EQ(last.input, 1u);
  EXPECT_EQ(tracks.tracks().at(3).best_face, 21u);
}

TEST(FaceTracksTest, AFailedBatchOrAFaceOfATrackNeverSeenIsAnError) {
  FaceTracks tracks(kTemplate, 4);
  tracks.start_input(0);
  FaceBatch failed;
  failed.faces.resize(1);
  failed.status = Error{ErrorCode::internal, "the model failed"};
  const Status s = tracks.add_embedded(failed);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "the model failed");
  FaceBatch unseen;
  unseen.faces.resize(1);
  unseen.faces[0].candidate.track_id = 5;
  embed(unseen);
  const Status refused = tracks.add_embedded(unseen);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("track 5, which no frame showed"), std::string::npos) << refused.error().message;
  EXPECT_TRUE(tracks.faces().empty());
}

// The journal in `dir` opened with `fingerprint` (ok() says whether it opened).
struct Harness {
  std::vector<std::string> records;
  Result<std::unique_ptr<Journal>> journal;
  DetectionJournal detections;
  EmbeddingJournal embeddings{128};
  Harness(const std::filesystem::path& dir, const std::string& fingerprint)
      : journal(open_harvest_journal(dir.string(), fingerprint, records)) {
    if (journal.ok()) {
      detections.resume_from(**journal, records);
      embeddings.resume_from(**journal, records);
    }
  }
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
  const std::vector<std::uint64_t> faces{7, 9};
  std::vector<Embedding> embedded(2, Embedding(128));
  embedded[0][0] = 0.6f;
  embedded[0][1] = 0.8f;
  embedded[1][127] = 1.0f / 3.0f;
  {
    Harness first(dir.path(), fingerprint);
    ASSERT_TRUE(first.journal.ok()) << first.journal.error().message;
    std::vector<Detections> out;
    EXPECT_FALSE(first.detections.replay(1, run, out)) << "a new journal answers nothing";
    first.detections.record(1, run, found_in(run));
    std::vector<Embedding> none;
    Status status;
    EXPECT_FALSE(first.embeddings.replay(faces, none, status)) << "a new journal answers nothing";
    first.embeddings.record(faces, embedded);
    EXPECT_TRUE(first.embeddings.status().ok());
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
  std::vector<Embedding> replayed;
  Status status;
  ASSERT_TRUE(resumed.embeddings.replay(faces, replayed, status));
  ASSERT_TRUE(status.ok()) << status.error().message;
  ASSERT_EQ(replayed.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(std::equal(embedded[i].begin(), embedded[i].end(), replayed[i].begin(), replayed[i].end())) << "bit for bit";
  }
  EXPECT_EQ(resumed.embeddings.resumed_batches(), 1u);
  EXPECT_FALSE(resumed.embeddings.replay(faces, replayed, status)) << "past the journal, the model runs again";
  EXPECT_TRUE(resumed.detections.finish_input(0).ok());
  EXPECT_TRUE(resumed.detections.finish_input(1).ok());
}

TEST(JournaledModelsTest, EmbeddingsOfOtherFacesAreRefused) {
  test::TempDir dir;
  {
    Harness first(dir.path(), "one");
    ASSERT_TRUE(first.journal.ok());
    first.embeddings.record(std::vector<std::uint64_t>{1, 2}, std::vector<Embedding>(2, Embedding(128)));
  }
  Harness resumed(dir.path(), "one");
  ASSERT_TRUE(resumed.journal.ok());
  std::vector<Embedding> out;
  Status status;
  ASSERT_TRUE(resumed.embeddings.replay(std::vector<std::uint64_t>{1, 3}, out, status)) << "answered, with its error";
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::data_loss);
  EXPECT_TRUE(out.empty());
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
