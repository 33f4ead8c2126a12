#include "support/ts_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>

namespace vigil::test {

TsHttpServer::TsHttpServer(std::string ts_path, double bytes_per_second) : bytes_per_second_(bytes_per_second) {
  std::ifstream in(ts_path, std::ios::binary);
  data_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TsHttpServer::~TsHttpServer() { stop(); }

int TsHttpServer::start(int port) {
  listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener_ < 0) return -1;
  int one = 1;
  setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(listener_, 8) != 0) {
    close(listener_);
    listener_ = -1;
    return -1;
  }
  socklen_t len = sizeof(addr);
  getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  running_ = true;
  acceptor_ = std::thread([this] { accept_loop(); });
  return port_;
}

void TsHttpServer::stop() {
  if (!running_.exchange(false)) return;
  shutdown(listener_, SHUT_RDWR);  // wakes accept()
  acceptor_.join();
  close(listener_);
  listener_ = -1;
  std::vector<std::thread> clients;
  {
    std::lock_guard lock(mu_);
    for (int fd : client_fds_) shutdown(fd, SHUT_RDWR);
    clients.swap(clients_);
  }
  for (auto& t : clients) t.join();
  std::lock_guard lock(mu_);
  for (int fd : client_fds_) close(fd);
  client_fds_.clear();
}

void TsHttpServer::accept_loop() {
  while (running_) {
    const int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (!running_) return;
      continue;
    }
    ++connections_;
    std::lock_guard lock(mu_);
    client_fds_.push_back(fd);
    clients_.emplace_back([this, fd] { serve(fd); });
  }
}

void TsHttpServer::serve(int fd) {
  char request[2048];
  (void)recv(fd, request, sizeof(request), 0);  // one GET; its content does not matter
  const std::string header = "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nConnection: close\r\n\r\n";
  bool ok = send(fd, header.data(), header.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(header.size());
  // 188-byte TS packets, sent in 20 ms slices paced to bytes_per_second, looping.
  const auto chunk = static_cast<std::size_t>(bytes_per_second_ * 0.02 / 188 + 1) * 188;
  std::size_t offset = 0;
  auto next = std::chrono::steady_clock::now();
  while (ok && running_) {
    next += std::chrono::milliseconds(20);
    std::this_thread::sleep_until(next);
    if (silent_) continue;  // half-open: connected, sending nothing
    const std::size_t n = std::min(chunk, data_.size() - offset);
    ok = send(fd, data_.data() + offset, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
    offset = (offset + n) % data_.size();
  }
  // stop() closes fd after joining this thread, so the number is never reused under it.
}

}  // namespace vigil::test
