#include "vigil/source/ffmpeg_source.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "support/test_support.h"

namespace vigil {
namespace {

using Clock = std::chrono::steady_clock;

// Reads to the end; returns the frame count, or the first error.
Result<int> drain(Source& source, std::vector<std::int64_t>* pts = nullptr) {
  int frames = 0;
  for (;;) {
    auto frame = source.read();
    if (!frame.ok()) return frame.error();
    if (!*frame) return frames;
    EXPECT_EQ((*frame)->seq, static_cast<std::uint64_t>(frames));
    if (pts) pts->push_back((*frame)->pts_ms);
    ++frames;
  }
}

SourceConfig file_config(const std::string& url) {
  SourceConfig config;
  config.type = SourceType::file;
  config.url = url;
  config.decoder_threads = 2;
  return config;
}

// Opens and drains; returns the error either step gave (the test requires one).
Error open_and_drain_expecting_error(const SourceConfig& config) {
  auto source = FfmpegSource::open(config, "cam");
  if (!source.ok()) return source.error();
  auto frames = drain(**source);
  EXPECT_FALSE(frames.ok()) << "decoded " << (frames.ok() ? *frames : -1) << " frames without an error";
  return frames.ok() ? Error{} : frames.error();
}

class FfmpegSourceTest : public ::testing::Test {
 protected:
  test::TempDir dir_;
};

TEST_F(FfmpegSourceTest, DecodesH264FileToExactFrameCount) {
  const std::string path = dir_.file("clip.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 100, 640, 360, 25));
  auto source = FfmpegSource::open(file_config(path), "cam");
  ASSERT_TRUE(source.ok()) << source.error().message;
  EXPECT_EQ((*source)->info().width, 640);
  EXPECT_EQ((*source)->info().height, 360);
  EXPECT_EQ((*source)->info().frame_count, 100);
  EXPECT_NEAR((*source)->info().fps, 25.0, 0.01);
  EXPECT_FALSE((*source)->info().live);
  std::vector<std::int64_t> pts;
  auto frames = drain(**source, &pts);
  ASSERT_TRUE(frames.ok()) << frames.error().message;
  EXPECT_EQ(*frames, 100);
  ASSERT_EQ(pts.size(), 100u);
  EXPECT_EQ(pts.front(), 0);
  EXPECT_EQ(pts.back(), 99 * 40);
}

TEST_F(FfmpegSourceTest, KeepsDecoderPixelFormatWithoutCopy) {
  const std::string path = dir_.file("clip.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 5, 320, 240));
  auto source = FfmpegSource::open(file_config(path), "lobby");
  ASSERT_TRUE(source.ok());
  auto frame = (*source)->read();
  ASSERT_TRUE(frame.ok() && *frame);
  const Frame& f = **frame;
  EXPECT_EQ(f.image.format, PixelFormat::yuv420p);
  EXPECT_EQ(f.image.width, 320);
  EXPECT_EQ(*f.camera, "lobby");
  EXPECT_GE(f.image.planes[0].stride, 320);
  EXPECT_NE(f.image.planes[2].data, nullptr);
}

TEST_F(FfmpegSourceTest, DecodesMegamindXvidToExactFrameCount) {
  auto source = FfmpegSource::open(file_config(test::data_file("media/Megamind.avi")), "cam");
  ASSERT_TRUE(source.ok()) << source.error().message;
  EXPECT_EQ((*source)->info().width, 720);
  EXPECT_EQ((*source)->info().height, 528);
  auto frames = drain(**source);
  ASSERT_TRUE(frames.ok()) << frames.error().message;
  EXPECT_EQ(*frames, 270);
}

TEST_F(FfmpegSourceTest, LoopStartsAgainWithIncreasingTimestamps) {
  const std::string path = dir_.file("short.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 10, 160, 120));
  SourceConfig config = file_config(path);
  config.loop = true;
  auto source = FfmpegSource::open(config, "cam");
  ASSERT_TRUE(source.ok());
  std::int64_t last_pts = -1;
  for (int i = 0; i < 25; ++i) {
    auto frame = (*source)->read();
    ASSERT_TRUE(frame.ok() && *frame) << "frame " << i;
    EXPECT_EQ((*frame)->seq, static_cast<std::uint64_t>(i));
    EXPECT_GT((*frame)->pts_ms, last_pts);
    last_pts = (*frame)->pts_ms;
  }
}

TEST_F(FfmpegSourceTest, TruncatedMp4GivesClearError) {
  const std::string path = dir_.file("clip.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 50, 320, 240));
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  const auto start = Clock::now();
  Error error = open_and_drain_expecting_error(file_config(path));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(error.message.empty());
  EXPECT_NE(error.message.find(path), std::string::npos) << error.message;
}

TEST_F(FfmpegSourceTest, TruncatedAviGivesDataLoss) {
  const std::string path = dir_.file("megamind_half.avi");
  std::filesystem::copy_file(test::data_file("media/Megamind.avi"), path);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  const auto start = Clock::now();
  Error error = open_and_drain_expecting_error(file_config(path));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(error.code, ErrorCode::data_loss) << error.message;
  EXPECT_NE(error.message.find("of 270 frames"), std::string::npos) << error.message;
}

TEST_F(FfmpegSourceTest, AnAviWhoseHeaderCountsAFrameTooManyIsNotTruncated) {
  // FFmpeg's AVI muxer writes 25 in the header of this 24-frame cut.
  const std::string path = dir_.file("cut24.avi");
  ASSERT_TRUE(test::cut_megamind(path, 24));
  auto source = FfmpegSource::open(file_config(path), "cam");
  ASSERT_TRUE(source.ok()) << source.error().message;
  auto frames = drain(**source);
  ASSERT_TRUE(frames.ok()) << frames.error().message;
  EXPECT_EQ(*frames, 24);
}

TEST_F(FfmpegSourceTest, RandomBytesGiveInvalidArgument) {
  const std::string path = dir_.file("noise.mp4");
  std::mt19937 rng(42);
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < 256 * 1024; ++i) out.put(static_cast<char>(rng() & 0xff));
  out.close();
  const auto start = Clock::now();
  Error error = open_and_drain_expecting_error(file_config(path));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(error.code == ErrorCode::invalid_argument || error.code == ErrorCode::data_loss) << error.describe();
}

TEST_F(FfmpegSourceTest, MissingFileGivesNotFound) {
  auto source = FfmpegSource::open(file_config(dir_.file("nope.mp4")), "cam");
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.error().code, ErrorCode::not_found);
  EXPECT_NE(source.error().message.find("nope.mp4"), std::string::npos);
}

TEST(FfmpegNetworkTest, RtspWithNothingListeningFailsFast) {
  SourceConfig config;
  config.type = SourceType::stream;
  config.url = "rtsp://127.0.0.1:1/x";
  const auto start = Clock::now();
  auto source = FfmpegSource::open(config, "cam");
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.error().code, ErrorCode::unavailable) << source.error().describe();
}

// A TCP listener on a free loopback port; the kernel completes handshakes by itself.
struct Listener {
  int fd = -1;
  int port = 0;
};
Listener listen_on_loopback() {
  Listener l;
  l.fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (l.fd < 0 || bind(l.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(l.fd, 4) != 0) return l;
  socklen_t len = sizeof(addr);
  getsockname(l.fd, reinterpret_cast<sockaddr*>(&addr), &len);
  l.port = ntohs(addr.sin_port);
  return l;
}

// A server that accepts TCP connections and never sends a byte: the open deadline must fire.
TEST(FfmpegNetworkTest, SilentServerTimesOutAtTheDeadline) {
  const Listener listener = listen_on_loopback();
  ASSERT_GT(listener.port, 0);
  SourceConfig config;
  config.type = SourceType::stream;
  config.url = "http://127.0.0.1:" + std::to_string(listener.port) + "/stream.ts";
  config.open_timeout_ms = 1000;
  config.read_timeout_ms = 1000;
  const auto start = Clock::now();
  auto source = FfmpegSource::open(config, "cam");
  const auto elapsed = Clock::now() - start;
  close(listener.fd);
  ASSERT_FALSE(source.ok());
  EXPECT_TRUE(source.error().code == ErrorCode::deadline_exceeded || source.error().code == ErrorCode::unavailable)
      << source.error().describe();
  EXPECT_GE(elapsed, std::chrono::milliseconds(900));
  EXPECT_LT(elapsed, std::chrono::milliseconds(3000));
}

TEST(FfmpegNetworkTest, HttpWithNothingListeningFailsFast) {
  const Listener listener = listen_on_loopback();
  ASSERT_GT(listener.port, 0);
  close(listener.fd);  // the port was just free and nothing listens on it now
  SourceConfig config;
  config.type = SourceType::stream;
  config.url = "http://127.0.0.1:" + std::to_string(listener.port) + "/x";
  const auto start = Clock::now();
  auto source = FfmpegSource::open(config, "cam");
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.error().code, ErrorCode::unavailable) << source.error().describe();
}

}  // namespace
}  // namespace vigil
