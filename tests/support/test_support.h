// Helpers shared by vigil's tests: where fetched data lives, temporary directories, and
// fixture media made at test time with Debian's ffmpeg.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
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

// The first `frames` frames of the real Megamind.avi (a face in nearly every frame),
// re-encoded as MJPEG into `path` (`quality`: ffmpeg's -q:v, 0 for its default). Returns false
// (with a test failure) if ffmpeg fails.
bool cut_megamind(const std::string& path, int frames, int quality = 0);

// The bytes of a file ("" when it cannot be read).
std::string read_file(const std::string& path);
// A file of float32 values (little-endian, as this machine); empty when missing.
std::vector<float> read_floats(const std::string& path);

// The lines of a text file (without their newlines).
std::vector<std::string> read_lines(const std::string& path);

// Runs a shell command; returns its exit status and fills `output` with stdout+stderr.
int run_command(const std::string& command, std::string* output = nullptr);

// A child process started from argv (argv[0] a path), its stdout and stderr to `log`
// (default: thrown away). The destructor kills (SIGKILL) and reaps it if still running.
class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv, const std::string& log = "/dev/null");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  void kill(int signal);
  // Whether it has exited (without blocking); fills the wait status when it has.
  bool exited(int* status = nullptr);
  // Blocks until it exits; the wait status (WIFEXITED...).
  int wait();
  // What it used (CPU times...), once it has exited.
  const rusage& usage() const { return usage_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  rusage usage_{};
};

// An S3 server on loopback: s3rver (npm, fetched by scripts/fetch_models.sh) serving the
// bucket "test" from a folder of its own, started by the constructor (which fails the test if
// it does not come up) and stopped by the destructor. What it stored is counted from its log.
class S3Server {
 public:
  S3Server();
  ~S3Server();
  S3Server(const S3Server&) = delete;
  S3Server& operator=(const S3Server&) = delete;
  bool ready() const { return port_ > 0 && process_; }
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Stops it (SIGTERM, then waits); start() brings it back on the same port and folder.
  void stop();
  bool start();
  // PUTs of `key` in bucket "test" it stored, over all its starts.
  int stored(const std::string& key) const;
  int stored_total() const;
  // The keys it stored, in the order it stored them.
  std::vector<std::string> stored_keys() const;
  // The object's bytes on its disk ("" when it has none).
  std::string object(const std::string& key) const;

 private:
  std::vector<std::string> log_lines() const;
  TempDir dir_;
  int port_ = 0;
  int starts_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// A real redis-server (Debian's) on a free loopback port, without persistence, started by the
// constructor (which fails the test if it does not come up) and stopped by the destructor.
// `password`: requirepass. stop() / start() bring it down and up on the same port (its data
// gone, as after a restart without persistence).
class RedisServer {
 public:
  explicit RedisServer(const std::string& password = "");
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  bool ready() const { return process_ != nullptr; }
  int port() const { return port_; }
  std::string url() const;  // redis://[:password@]127.0.0.1:PORT
  void stop();
  bool start();
  // Runs redis-cli against it; its output (trimmed).
  std::string cli(const std::string& args) const;

 private:
  TempDir dir_;
  std::string password_;
  int port_ = 0;
  int starts_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// Polls `done` every 5 ms until it holds (true) or `limit` passes (false): what a test waits
// on instead of a fixed sleep.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::milliseconds(20000));

// A loopback TCP port nobody listens on now.
int free_port();

}  // namespace vigil::test
