#include "vigil/harvest/checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "support/test_support.h"

namespace vigil {
namespace {

std::vector<Detections> some_detections() {
  std::vector<Detections> frames(3);
  Detection face;
  face.bbox = {10.25f, 20.5f, 60.125f, 90.0f};
  face.score = 0.8765f;
  face.keypoint_count = 6;
  for (int i = 0; i < 6; ++i) face.keypoints[static_cast<std::size_t>(i)] = {1.5f * static_cast<float>(i), 100.0f / 3.0f};
  frames[0].push_back(face);
  frames[0].push_back(face);
  frames[0][1].class_id = 2;
  frames[0][1].keypoint_count = 0;
  frames[2].push_back(face);  // frames[1]: nothing found
  return frames;
}

TEST(CheckpointTest, DetectionsComeBackBitForBit) {
  const std::vector<Detections> frames = some_detections();
  const std::string record = encode_detections(1, 4711, frames);
  EXPECT_EQ(record_kind(record), RecordKind::detections);
  DetectionBatch batch;
  ASSERT_TRUE(decode_detections(record, batch).ok());
  EXPECT_EQ(batch.input, 1u);
  EXPECT_EQ(batch.first_frame, 4711u);
  ASSERT_EQ(batch.frames.size(), 3u);
  EXPECT_TRUE(batch.frames[1].empty());
  for (std::size_t f = 0; f < 3; ++f) {
    ASSERT_EQ(batch.frames[f].size(), frames[f].size());
    for (std::size_t i = 0; i < frames[f].size(); ++i) {
      const Detection &a = frames[f][i], &b = batch.frames[f][i];
      EXPECT_EQ(std::memcmp(&a.bbox, &b.bbox, sizeof a.bbox), 0);
      EXPECT_EQ(a.score, b.score);
      EXPECT_EQ(a.class_id, b.class_id);
      ASSERT_EQ(a.keypoint_count, b.keypoint_count);
      for (int k = 0; k < a.keypoint_count; ++k) {
        EXPECT_EQ(a.keypoints[static_cast<std::size_t>(k)].x, b.keypoints[static_cast<std::size_t>(k)].x);
        EXPECT_EQ(a.keypoints[static_cast<std::size_t>(k)].y, b.keypoints[static_cast<std::size_t>(k)].y);
      }
    }
  }
}

TEST(CheckpointTest, EmbeddingsComeBackBitForBit) {
  const std::vector<std::uint64_t> ids = {7, 9};
  std::vector<float> values(2 * 4);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = 1.0f / static_cast<float>(i + 3);
  EmbeddingBatch batch;
  ASSERT_TRUE(decode_embeddings(encode_embeddings(ids, 4, values), batch).ok());
  EXPECT_EQ(batch.face_ids, ids);
  EXPECT_EQ(batch.dim, 4u);
  EXPECT_EQ(batch.values, values);
}

TEST(CheckpointTest, EveryCutOrWrongKindOfRecordIsDataLossNotACrash) {
  const std::string detections = encode_detections(0, 1, some_detections());
  const std::vector<float> values(2 * 4, 0.5f);
  const std::string embeddings = encode_embeddings(std::vector<std::uint64_t>{1, 2}, 4, values);
  DetectionBatch d;
  EmbeddingBatch e;
  for (std::size_t n = 0; n < detections.size(); ++n) {
    const Status s = decode_detections(std::string_view(detections).substr(0, n), d);
    ASSERT_FALSE(s.ok()) << "cut at " << n;
    EXPECT_EQ(s.error().code, ErrorCode::data_loss);
  }
  for (std::size_t n = 0; n < embeddings.size(); ++n) {
    EXPECT_FALSE(decode_embeddings(std::string_view(embeddings).substr(0, n), e).ok()) << "cut at " << n;
  }
  EXPECT_FALSE(decode_detections(embeddings, d).ok());
  EXPECT_FALSE(decode_embeddings(detections, e).ok());
  EXPECT_FALSE(decode_detections(detections + "x", d).ok()) << "trailing bytes";
  std::string huge = detections;
  huge[16] = '\x7f';  // the frame count's top byte: billions of frames in a small record
  EXPECT_FALSE(decode_detections(huge, d).ok());
  DetectionBatch key;
  ASSERT_TRUE(decode_detections_key(encode_detections(3, 42, some_detections()), key).ok());
  EXPECT_EQ(key.input, 3u);
  EXPECT_EQ(key.first_frame, 42u);
  EXPECT_TRUE(key.frames.empty()) << "the detections are left for the replay";
  EXPECT_FALSE(decode_detections_key(std::string_view(detections).substr(0, 12), key).ok());
  EXPECT_FALSE(decode_detections_key(embeddings, key).ok());
  EXPECT_FALSE(record_kind("").has_value());
  EXPECT_FALSE(record_kind("Z").has_value());
  auto header = decode_header(encode_header(R"({"version":1})"));
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(*header, R"({"version":1})");
}

TEST(CheckpointTest, UploadRecordsSayWhichObjectWithWhichBytes) {
  const std::string started = encode_upload(RecordKind::upload_started, "http://127.0.0.1:9/b/p/crops/1.png", "0123abcd");
  const std::string uploaded = encode_upload(RecordKind::uploaded, "http://127.0.0.1:9/b/p/crops/1.png", "0123abcd");
  EXPECT_EQ(record_kind(started), RecordKind::upload_started);
  EXPECT_EQ(record_kind(uploaded), RecordKind::uploaded);
  UploadRecord r;
  ASSERT_TRUE(decode_upload(uploaded, r).ok());
  EXPECT_EQ(r.url, "http://127.0.0.1:9/b/p/crops/1.png");
  EXPECT_EQ(r.md5, "0123abcd");
  EXPECT_FALSE(decode_upload(uploaded.substr(0, 3), r).ok()) << "cut inside the MD5's length";
  EXPECT_FALSE(decode_upload(encode_header("{}"), r).ok()) << "another kind";
  std::string lying = uploaded;
  lying[1] = '\x7f';  // an MD5 longer than the record
  EXPECT_FALSE(decode_upload(lying, r).ok());
}

TEST(CheckpointTest, FileSha256IsTheStandardDigest) {
  test::TempDir dir;
  std::ofstream(dir.file("abc")) << "abc";
  auto sha = file_sha256(dir.file("abc"));
  ASSERT_TRUE(sha.ok());
  EXPECT_EQ(*sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::ofstream(dir.file("empty")).flush();
  EXPECT_EQ(*file_sha256(dir.file("empty")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(file_sha256(dir.file("missing")).error().code, ErrorCode::unavailable);
}

}  // namespace
}  // namespace vigil
