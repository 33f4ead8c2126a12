// TsHttpServer: serves an MPEG-TS file over HTTP on loopback, paced to real time and
// looped, like a network camera. Tests stop and restart it (the camera must reconnect) or
// make it go silent while keeping the connection open (a half-open stream).
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vigil::test {

class TsHttpServer {
 public:
  // bytes_per_second: pacing (file size / duration gives real time).
  TsHttpServer(std::string ts_path, double bytes_per_second);
  ~TsHttpServer();

  // Listens on 127.0.0.1:port (0: any free port); returns the port, or -1.
  int start(int port = 0);
  // Closes the listener and every connection.
  void stop();
  // Silent: keep connections open but send nothing more.
  void set_silent(bool silent) { silent_ = silent; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/live.ts"; }
  int connections() const { return connections_.load(); }

 private:
  void accept_loop();
  void serve(int fd);

  std::vector<char> data_;
  double bytes_per_second_;
  int port_ = 0;
  int listener_ = -1;
  std::atomic<bool> running_{false};
  std::atomic<bool> silent_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> clients_;  // guarded by mu_
  std::vector<int> client_fds_;       // guarded by mu_
};

}  // namespace vigil::test
