#include "support/test_support.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <random>

#include "vigil/core/paths.h"

namespace vigil::test {

std::string data_file(const std::string& relative) {
  const std::string path = data_dir() + "/" + relative;
  EXPECT_TRUE(std::filesystem::exists(path)) << path << " is missing: run scripts/fetch_models.sh";
  return path;
}

std::string vigil_binary() { return std::string(VIGIL_BINARY_DIR) + "/vigil"; }

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() / ("vigil-test-" + std::to_string(rd()) + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

int run_command(const std::string& command, std::string* output) {
  FILE* pipe = popen(("( " + command + " ) 2>&1").c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buffer{};
  std::string text;
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) text.append(buffer.data(), n);
  const int status = pclose(pipe);
  if (output) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool make_h264_video(const std::string& path, int frames, int width, int height, int fps) {
  const std::string command = "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=" + std::to_string(width) + "x" +
                              std::to_string(height) + ":rate=" + std::to_string(fps) + " -frames:v " +
                              std::to_string(frames) + " -c:v libx264 -preset ultrafast -pix_fmt yuv420p '" + path + "'";
  std::string output;
  const int rc = run_command(command, &output);
  EXPECT_EQ(rc, 0) << command << "\n" << output;
  return rc == 0;
}

}  // namespace vigil::test
