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

Frame make_frame(const std::string& camera, std::uint64_t seq) {
  Frame f;
  f.camera = std::make_shared<const std::string>(camera);
  f.seq = seq;
  f.pts_ms = static_cast<std::int64_t>(seq) * 40;
  f.captured_at = SystemTime{} + std::chrono::milliseconds(1795417348123LL);
  return f;
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
  const Frame f0 = make_frame("lobby", 812);
  const Frame f1 = make_frame("door", 3);
  const Detections faces = {face()};
  const Detections none;
  ASSERT_TRUE((*sink)->write({&f0, "faces", &faces}).ok());
  ASSERT_TRUE((*sink)->write({&f1, "faces", &none}).ok());
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

TEST(JsonlSinkTest, EscapesCameraNames) {
  test::TempDir dir;
  auto sink = JsonlSink::open({dir.file("r.jsonl")});
  ASSERT_TRUE(sink.ok());
  const Frame f = make_frame("quote\"back\\slash\nnew\x01", 1);
  ASSERT_TRUE((*sink)->write({&f, "m", nullptr}).ok());
  (void)(*sink)->close();
  const auto j = nlohmann::json::parse(read_lines(dir.file("r.jsonl")).at(0));
  EXPECT_EQ(j["camera"], "quote\"back\\slash\nnew\x01");
}

TEST(JsonlSinkTest, AppendsToAnExistingFile) {
  test::TempDir dir;
  const Frame f = make_frame("a", 1);
  for (int run = 0; run < 2; ++run) {
    auto sink = JsonlSink::open({dir.file("r.jsonl")});
    ASSERT_TRUE(sink.ok());
    EXPECT_EQ((*sink)->repaired_bytes(), 0u);
    ASSERT_TRUE((*sink)->write({&f, "m", nullptr}).ok());
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
  const Frame f = make_frame("b", 2);
  ASSERT_TRUE((*sink)->write({&f, "m", nullptr}).ok());
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
  const Frame f = make_frame("b", 2);
  ASSERT_TRUE((*sink)->write({&f, "m", nullptr}).ok());
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
  const Frame f = make_frame("a", 1);
  ASSERT_TRUE((*sink)->write({&f, "m", nullptr}).ok());
  // Not closed, not flushed: another reader already sees the whole line.
  EXPECT_EQ(read_lines(dir.file("r.jsonl")).size(), 1u);
}

}  // namespace
}  // namespace vigil
