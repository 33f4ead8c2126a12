#include "vigil/sink/jsonl_sink.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/test_support.h"

namespace vigil {
namespace {

using test::read_lines;

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A result for a frame of `camera` (no pixels), from a pool that outlives the test.
FrameResult make_result(const std::string& camera, std::uint64_t seq, Detections detections = {}) {
  static const auto pool = make_frame_pool();
  FrameResult r;
  r.frame = pool->acquire();
  Frame& f = *r.frame.mutable_get();
  f.camera = std::make_shared<const std::string>(camera);
  f.seq = seq;
  f.pts_ms = static_cast<std::int64_t>(seq) * 40;
  f.captured_at = SystemTime{} + std::chrono::milliseconds(1795417348123LL);
  r.model = "m";
  r.detected = true;
  r.detections = std::move(detections);
  return r;
}

Detection face() {
  Detection d;
  d.bbox = {10.25f, 20.5f, 110.0f, 130.75f};
  d.score = 0.9312f;
  d.keypoint_count = 6;
  for (int k = 0; k < 6; ++k) d.keypoints[k] = {30.0f + k, 40.0f + k};
  return d;
}

TEST(JsonlSinkTest, WritesOneParseableLinePerFrame) {
  test::TempDir dir;
  auto sink = JsonlSink::open({dir.file("out/results.jsonl")});  // creates the folder
  ASSERT_TRUE(sink.ok()) << sink.error().message;
  FrameResult f0 = make_result("lobby", 812, {face()});
  FrameResult f1 = make_result("door", 3);
  f0.model = f1.model = "faces";
  ASSERT_TRUE((*sink)->write(f0).ok());
  ASSERT_TRUE((*sink)->write(f1).ok());
  ASSERT_TRUE((*sink)->close().ok());

  const auto lines = read_lines(dir.file("out/results.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  const auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["camera"], "lobby");
  EXPECT_EQ(j["seq"], 812);
  EXPECT_EQ(j["pts_ms"], 812 * 40);
  EXPECT_EQ(j["captured_at"], "2026-11-23T07:02:28.123Z");
  EXPECT_EQ(j["model"], "faces");
  ASSERT_EQ(j["detections"].size(), 1u);
  EXPECT_NEAR(j["detections"][0]["bbox"][0].get<double>(), 10.2, 0.051);
  EXPECT_NEAR(j["detections"][0]["bbox"][3].get<double>(), 130.8, 0.051);
  EXPECT_NEAR(j["detections"][0]["score"].get<double>(), 0.931, 1e-9);
  ASSERT_EQ(j["detections"][0]["keypoints"].size(), 6u);
  EXPECT_EQ(j["detections"][0]["keypoints"][5][1], 45.0);
  EXPECT_TRUE(nlohmann::json::parse(lines[1])["detections"].empty());
}

// A person's 17 COCO keypoints come with their scores; a face's keypoints have none.
TEST(JsonlSinkTest, APersonsKeypointsComeWithTheirScores) {
  test::TempDir dir;
  auto sink = JsonlSink::open({dir.file("people.jsonl")});
  ASSERT_TRUE(sink.ok()) << sink.error().message;
  Detection person;
  person.bbox = {100, 50, 180, 300};
  person.score = 0.71f;
  person.class_id = kPersonClass;
  person.keypoint_count = Detection::kMaxKeypoints;
  for (int k = 0; k < person.keypoint_count; ++k) {
    person.keypoints[static_cast<std::size_t>(k)] = {110.0f + static_cast<float>(k), 60.0f + 10.0f * static_cast<float>(k)};
    person.keypoint_scores[static_cast<std::size_t>(k)] = 0.05f * static_cast<float>(k);
  }
  ASSERT_TRUE((*sink)->write(make_result("street", 1, {person, face()})).ok());
  ASSERT_TRUE((*sink)->close().ok());
  const auto j = nlohmann::json::parse(read_lines(dir.file("people.jsonl")).at(0));
  const auto& p = j["detections"][0];
  EXPECT_EQ(p["class"], 0);
  ASSERT_EQ(p["keypoints"].size(), 17u);
  ASSERT_EQ(p["keypoint_scores"].size(), 17u);
  EXPECT_NEAR(p["keypoint_scores"][16].get<double>(), 0.8, 1e-9);
  EXPECT_NEAR(p["keypoint_scores"][0].get<double>(), 0.0, 1e-9);
  EXPECT_FALSE(j["detections"][1].contains("keypoint_scores"));
}

TEST(JsonlSinkTest, EscapesCameraNames) {
  test::TempDir dir;
  auto sink = JsonlSink::open({dir.file("r.jsonl")});
  ASSERT_TRUE(sink.ok());
  const FrameResult f = make_result("quote\"back\\slash\nnew\x01", 1);
  ASSERT_TRUE((*sink)->write(f).ok());
  (void)(*sink)->close();
  const auto j = nlohmann::json::parse(read_lines(dir.file("r.jsonl")).at(0));
  EXPECT_EQ(j["camera"], "quote\"back\\slash\nnew\x01");
}

TEST(JsonlSinkTest, AppendsToAnExistingFile) {
  test::TempDir dir;
  const FrameResult f = make_result("a", 1);
  for (int run = 0; run < 2; ++run) {
    auto sink = JsonlSink::open({dir.file("r.jsonl")});
    ASSERT_TRUE(sink.ok());
    EXPECT_EQ((*sink)->repaired_bytes(), 0u);
    ASSERT_TRUE((*sink)->write(f).ok());
  }
  EXPECT_EQ(read_lines(dir.file("r.jsonl")).size(), 2u);
}

TEST(JsonlSinkTest, TornLastLineFromACrashIsCutBeforeAppending) {
  test::TempDir dir;
  const std::string path = dir.file("r.jsonl");
  std::ofstream(path) << "{\"camera\":\"a\",\"seq\":1}\n{\"camera\":\"a\",\"se";  // crash mid-line
  auto sink = JsonlSink::open({path});
  ASSERT_TRUE(sink.ok());
  EXPECT_EQ((*sink)->repaired_bytes(), std::string("{\"camera\":\"a\",\"se").size());
  const FrameResult f = make_result("b", 2);
  ASSERT_TRUE((*sink)->write(f).ok());
  (void)(*sink)->close();
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& line : lines) EXPECT_TRUE(nlohmann::json::accept(line)) << line;
  EXPECT_EQ(nlohmann::json::parse(lines[1])["camera"], "b");
}

TEST(JsonlSinkTest, FileWithOnlyATornLineIsEmptiedThenWritten) {
  test::TempDir dir;
  const std::string path = dir.file("r.jsonl");
  std::ofstream(path) << std::string(10000, 'x');  // longer than one read chunk, no newline
  auto sink = JsonlSink::open({path});
  ASSERT_TRUE(sink.ok());
  EXPECT_EQ((*sink)->repaired_bytes(), 10000u);
  const FrameResult f = make_result("b", 2);
  ASSERT_TRUE((*sink)->write(f).ok());
  (void)(*sink)->close();
  EXPECT_EQ(read_all(path).find('x'), std::string::npos);
  EXPECT_EQ(read_lines(path).size(), 1u);
}

TEST(JsonlSinkTest, UnwritablePathIsAClearError) {
  auto sink = JsonlSink::open({"/proc/vigil-cannot-write-here/r.jsonl"});
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.error().message.find("/proc/vigil-cannot-write-here"), std::string::npos);
}

TEST(JsonlSinkTest, EachLineIsOnDiskOnceWriteReturns) {
  test::TempDir dir;
  auto sink = JsonlSink::open({dir.file("r.jsonl")});
  ASSERT_TRUE(sink.ok());
  const FrameResult f = make_result("a", 1);
  ASSERT_TRUE((*sink)->write(f).ok());
  // Not closed, not flushed: another reader already sees the whole line.
  EXPECT_EQ(read_lines(dir.file("r.jsonl")).size(), 1u);
}

TEST(JsonlSinkTest, TrackedResultsCarryTrackIdsTracksAndEvents) {
  test::TempDir dir;
  auto sink = JsonlSink::open({dir.file("t.jsonl")});
  ASSERT_TRUE(sink.ok());
  FrameResult r = make_result("lobby", 5, {face()});
  r.tracked = true;
  r.detections[0].track_id = 7;
  r.tracks.push_back({.track_id = 7, .bbox = {10, 20, 110, 130}, .score = 0.93f, .detection = 0, .identity = {.name = "ada", .known = true, .similarity = 0.95f, .margin = 0.1f}});
  r.tracks.push_back({.track_id = 3, .bbox = {200, 20, 300, 130}, .score = 0.8f, .predicted = true, .identity = {}});
  r.track_events.push_back({TrackEventKind::started, 7, {}});
  FaceResult embedded;
  embedded.detection = 0;
  embedded.track_id = 7;
  embedded.quality = 0.5f;
  embedded.identity = {.name = "o\"neil\\x", .known = false, .similarity = 1.0f, .margin = 0.0f};
  r.faces.push_back(embedded);
  ASSERT_TRUE((*sink)->write(r).ok());
  FrameResult untracked = make_result("door", 1, {face()});
  ASSERT_TRUE((*sink)->write(untracked).ok());
  const auto lines = read_lines(dir.file("t.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  const auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["detections"][0]["track_id"], 7);
  ASSERT_EQ(j["tracks"].size(), 2u);
  EXPECT_EQ(j["tracks"][1]["track_id"], 3);
  EXPECT_EQ(j["tracks"][1]["predicted"], true);
  EXPECT_EQ(j["tracks"][0]["identity"]["name"], "ada");
  EXPECT_EQ(j["tracks"][0]["identity"]["known"], true);
  EXPECT_NEAR(j["tracks"][0]["identity"]["similarity"].get<double>(), 0.95, 1e-3);
  EXPECT_FALSE(j["tracks"][1].contains("identity"));
  ASSERT_EQ(j["faces"].size(), 1u);
  EXPECT_EQ(j["faces"][0]["track_id"], 7);
  EXPECT_EQ(j["faces"][0]["identity"]["name"], "o\"neil\\x");  // escaped in the line, intact when parsed
  EXPECT_FALSE(j["faces"][0]["identity"].contains("margin"));
  EXPECT_EQ(j["track_events"][0]["event"], "started");
  const auto u = nlohmann::json::parse(lines[1]);
  EXPECT_FALSE(u.contains("tracks"));
  EXPECT_FALSE(u["detections"][0].contains("track_id"));
}

}  // namespace
}  // namespace vigil
