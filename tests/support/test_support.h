// Helpers shared by vigil's tests: where fetched data lives, temporary directories, and
// fixture media made at test time with Debian's ffmpeg.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace vigil::test {

// A file from the data cache (scripts/fetch_models.sh). Fails the calling test if missing:
// a missing model is a set-up error, never a reason to skip.
std::string data_file(const std::string& relative);

// The vigil executable of this build.
std::string vigil_binary();

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Encodes `frames` frames of ffmpeg's testsrc2 pattern to H.264 in `path` (container from
// the extension). Returns false (with a test failure) if ffmpeg fails.
bool make_h264_video(const std::string& path, int frames, int width, int height, int fps = 25);

// The lines of a text file (without their newlines).
std::vector<std::string> read_lines(const std::string& path);

// Runs a shell command; returns its exit status and fills `output` with stdout+stderr.
int run_command(const std::string& command, std::string* output = nullptr);

}  // namespace vigil::test
