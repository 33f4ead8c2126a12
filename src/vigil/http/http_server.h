// HttpServer: HTTP/1.1 on GNU libmicrohttpd, event-driven (epoll, a small pool of polling
// threads), so idle, slow or streaming clients cost a socket each and never a thread.
//
// Why libmicrohttpd: cpp-httplib (Debian 0.11) serves each connection on a thread of a fixed
// pool for its whole keep-alive life, so a few hundred idle or slow clients, or a few dozen
// MJPEG viewers, leave nothing for /healthz; Boost.Beast would do, but its limits, timeouts
// and request parsing would be ours to write. libmicrohttpd has them: connection limit,
// per-connection memory (header size) limit, idle timeout, and suspend/resume for streams.
//
// The handler runs on a polling thread and must not block for long (an encode of a few
// milliseconds is the most it does). Request bodies are collected up to max_body_bytes;
// beyond that the handler is not called and the client gets 413.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vigil/core/status.h"

namespace vigil {

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // an IPv4 or IPv6 literal, or "localhost"
  int port = 8080;                  // 0: any free port (see HttpServer::port())
  int threads = 2;                  // polling threads
  int max_connections = 1024;
  int idle_timeout_s = 30;          // a connection silent this long is closed
  std::size_t max_header_bytes = 16 * 1024;  // request line + headers (beyond: 431 or closed)
  std::size_t max_body_bytes = 64 * 1024;    // beyond: 413
};

struct HttpRequest {
  std::string method;
  std::string path;                                      // percent-decoded by the server
  std::map<std::string, std::string> query;              // decoded arguments
  std::map<std::string, std::string> headers;            // names in lower case
  std::string body;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// A response body produced while it is sent (MJPEG, Server-Sent Events). The server calls
// read() on a polling thread whenever the socket can take more; it must not block.
class HttpStream {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~HttpStream() = default;
  // Writes up to `max` bytes into buf and returns how many; 0 when nothing is ready (the
  // connection is parked, no thread waits, until `retry_at` or a wake of its kind); -1 to end.
  virtual long read(char* buf, std::size_t max, Clock::time_point now, Clock::time_point& retry_at) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Instead of body: bytes owned elsewhere (e.g. a cached snapshot), kept alive by `owner`
  // until the response is sent.
  std::shared_ptr<const void> owner;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  // Instead of either: a streamed body of unknown length, and its kind (for wake()).
  std::shared_ptr<HttpStream> stream;
  int stream_kind = 0;
};

class HttpServer {
 public:
  using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;

  // Binds and starts serving. Errors: invalid_argument (bad host), unavailable (the port is
  // taken or cannot be bound).
  static Result<std::unique_ptr<HttpServer>> start(const HttpServerOptions& options, Handler handler);
  ~HttpServer();  // stops: closes every connection, joins the polling threads
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  std::uint64_t requests() const;
  // Streams open now, and parked (waiting for data) among them.
  std::size_t streams() const;
  // Un-parks every stream of this kind (new data for them all, e.g. a new event).
  void wake(int stream_kind);

 private:
  HttpServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// {"error": message} with the status, as every endpoint answers errors.
void json_error(HttpResponse& response, int status, const std::string& message);

}  // namespace vigil
