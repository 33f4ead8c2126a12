#include "support/test_support.h"

#include <cstring>

#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include "vigil/core/paths.h"

extern char** environ;

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

std::vector<float> read_floats(const std::string& path) {
  const std::string bytes = read_file(path);
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
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

bool cut_megamind(const std::string& path, int frames, int quality) {
  const std::string command = "ffmpeg -nostdin -v error -y -i " + data_file("media/Megamind.avi") + " -frames:v " +
                              std::to_string(frames) + " -c:v mjpeg" +
                              (quality > 0 ? " -q:v " + std::to_string(quality) : std::string()) + " '" + path + "'";
  std::string output;
  const int rc = run_command(command, &output);
  EXPECT_EQ(rc, 0) << command << "\n" << output;
  return rc == 0;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<std::string> strings = argv;
  std::vector<char*> args;
  for (std::string& a : strings) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << argv.front();
  if (rc != 0) pid_ = -1;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    wait();
  }
}

void ChildProcess::kill(int signal) {
  if (pid_ > 0 && !reaped_) ::kill(pid_, signal);
}

bool ChildProcess::exited(int* status) {
  if (pid_ <= 0) return true;
  if (!reaped_ && ::wait4(pid_, &status_, WNOHANG, &usage_) == pid_) reaped_ = true;
  if (reaped_ && status) *status = status_;
  return reaped_;
}

int ChildProcess::wait() {
  if (pid_ <= 0) return -1;
  while (!reaped_) {
    if (::wait4(pid_, &status_, 0, &usage_) == pid_) reaped_ = true;
    else if (errno != EINTR) break;
  }
  return status_;
}

S3Server::S3Server() { start(); }

S3Server::~S3Server() { stop(); }

bool S3Server::start() {
  const std::string script = data_file("node/node_modules/s3rver/bin/s3rver.js");
  std::filesystem::create_directories(dir_.path() / "data");
  const std::string log = dir_.file("log-" + std::to_string(++starts_));
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/env", "node", script, "-d", dir_.file("data"), "-a", "127.0.0.1", "-p",
                               std::to_string(port_), "--configure-bucket", "test"},
      log);
  // Up when it says where it listens (the port it was given, or the one it took).
  const std::string listening = "S3rver listening on 127.0.0.1:";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    for (const std::string& line : read_lines(log)) {
      const std::size_t at = line.find(listening);
      if (at != std::string::npos) {
        port_ = std::stoi(line.substr(at + listening.size()));
        return true;
      }
    }
    if (process_->exited()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "s3rver did not start: " << read_file(log);
  process_.reset();
  return false;
}

void S3Server::stop() {
  if (!process_) return;
  process_->kill(SIGTERM);
  process_->wait();
  process_.reset();
}

std::vector<std::string> S3Server::log_lines() const {
  std::vector<std::string> lines;
  for (int i = 1; i <= starts_; ++i) {
    for (std::string& line : read_lines(dir_.file("log-" + std::to_string(i)))) lines.push_back(std::move(line));
  }
  return lines;
}

int S3Server::stored(const std::string& key) const {
  const std::string needle = "Stored object \"" + key + "\" in bucket \"test\"";
  int n = 0;
  for (const std::string& line : log_lines()) n += line.find(needle) != std::string::npos;
  return n;
}

int S3Server::stored_total() const { return static_cast<int>(stored_keys().size()); }

std::vector<std::string> S3Server::stored_keys() const {
  const std::string open = "Stored object \"", close = "\" in bucket \"test\"";
  std::vector<std::string> keys;
  for (const std::string& line : log_lines()) {
    const std::size_t a = line.find(open);
    const std::size_t b = a == std::string::npos ? a : line.find(close, a + open.size());
    if (b != std::string::npos) keys.push_back(line.substr(a + open.size(), b - a - open.size()));
  }
  return keys;
}

std::string S3Server::object(const std::string& key) const { return read_file(dir_.file("data/test/" + key + "._S3rver_object")); }

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

RedisServer::RedisServer(const std::string& password) : password_(password) {
  for (int attempt = 0; attempt < 5 && !process_; ++attempt) {
    port_ = free_port();
    start();
  }
  if (!process_) ADD_FAILURE() << "redis-server did not start";
}

RedisServer::~RedisServer() { stop(); }

std::string RedisServer::url() const {
  return "redis://" + (password_.empty() ? "" : ":" + password_ + "@") + "127.0.0.1:" + std::to_string(port_);
}

bool RedisServer::start() {
  const std::string log = dir_.file("redis-" + std::to_string(++starts_) + ".log");
  std::vector<std::string> argv = {"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", dir_.path().string(), "--logfile", log,
                                   "--protected-mode", "no"};
  if (!password_.empty()) {
    argv.push_back("--requirepass");
    argv.push_back(password_);
  }
  process_ = std::make_unique<ChildProcess>(argv);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_file(log).find("Ready to accept connections") != std::string::npos) return true;
    if (process_->exited()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  process_.reset();
  return false;
}

void RedisServer::stop() {
  if (!process_) return;
  process_->kill(SIGKILL);
  process_->wait();
  process_.reset();
}

std::string RedisServer::cli(const std::string& args) const {
  std::string out;
  run_command("redis-cli -p " + std::to_string(port_) + (password_.empty() ? "" : " --no-auth-warning -a " + password_) + " " + args,
              &out);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace vigil::test
