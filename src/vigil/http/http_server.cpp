#include "vigil/http/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <cctype>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "vigil/core/mutex.h"

namespace vigil {

namespace {

// One request's state across the access handler's calls (headers, body chunks, the end).
struct RequestContext {
  std::string body;
  bool too_large = false;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

MHD_Result collect(void* cls, MHD_ValueKind, const char* key, const char* value) {
  auto* map = static_cast<std::map<std::string, std::string>*>(cls);
  if (key) (*map)[std::string(key)] = value ? value : "";
  return MHD_YES;
}

MHD_Result collect_lower(void* cls, MHD_ValueKind, const char* key, const char* value) {
  auto* map = static_cast<std::map<std::string, std::string>*>(cls);
  if (key) (*map)[lower(key)] = value ? value : "";
  return MHD_YES;
}

void log_from_mhd(void*, const char* format, va_list args) {
  char line[512];
  std::vsnprintf(line, sizeof line, format, args);
  std::size_t n = std::strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
  spdlog::debug("http: {}", line);
}


void free_owner(void* cls) { delete static_cast<std::shared_ptr<const void>*>(cls); }

}  // namespace

void json_error(HttpResponse& response, int status, const std::string& message) {
  response.status = status;
  response.content_type = "application/json";
  response.body = nlohmann::json{{"error", message}}.dump();
  response.data = nullptr;
  response.owner.reset();
}

struct HttpServer::Impl {
  // One streamed response. Parked (suspended in libmicrohttpd) while it has nothing to send;
  // un-parked by the resumer thread at retry_at, or by wake().
  struct Parking {
    bool parked = false;  // suspended until retry_at or a wake
    bool woken = false;   // new data while it was being read
    HttpStream::Clock::time_point retry_at{};
  };
  struct Stream {
    explicit Stream(Impl& s) : server(&s), parking(s.stream_mu) {}
    Impl* const server;
    MHD_Connection* connection = nullptr;
    std::shared_ptr<HttpStream> body;
    int kind = 0;
    std::uint64_t id = 0;     // set before the first read
    Guarded<Parking> parking;  // by the server's stream_mu
  };

  HttpServerOptions options;
  Handler handler;
  MHD_Daemon* daemon = nullptr;
  std::atomic<std::uint64_t> requests{0};

  mutable Mutex stream_mu;
  CondVar stream_cv;
  std::map<std::uint64_t, Stream*> streams GUARDED_BY(stream_mu);                          // open streams
  std::multimap<HttpStream::Clock::time_point, std::uint64_t> due GUARDED_BY(stream_mu);  // parked ones by retry time
  std::uint64_t next_stream_id GUARDED_BY(stream_mu) = 1;
  bool stopping GUARDED_BY(stream_mu) = false;
  std::thread resumer;

  ~Impl() {
    std::vector<MHD_Connection*> parked;
    {
      MutexLock lock(stream_mu);
      stopping = true;  // every stream ends at its next read
      for (auto& [id, s] : streams) {
        Parking& p = s->parking.get(stream_mu);
        if (p.parked) {
          p.parked = false;
          parked.push_back(s->connection);
        }
      }
    }
    for (MHD_Connection* c : parked) MHD_resume_connection(c);
    stream_cv.notify_all();
    if (resumer.joinable()) resumer.join();
    if (daemon) MHD_stop_daemon(daemon);
  }

  // Un-parks streams whose retry time came. A parked connection is suspended, so
  // libmicrohttpd cannot close or free it: resuming outside the lock is safe.
  void resume_loop() {
    MutexLock lock(stream_mu);
    std::vector<MHD_Connection*> ready;
    while (!stopping) {
      const auto now = HttpStream::Clock::now();
      while (!due.empty() && due.begin()->first <= now) {
        auto it = streams.find(due.begin()->second);
        if (it != streams.end()) {
          Parking& p = it->second->parking.get(stream_mu);
          if (p.parked && p.retry_at == due.begin()->first) {
            p.parked = false;
            ready.push_back(it->second->connection);
          }
        }
        due.erase(due.begin());
      }
      if (!ready.empty()) {
        lock.unlock();
        for (MHD_Connection* c : ready) MHD_resume_connection(c);
        ready.clear();
        lock.lock();
        continue;
      }
      if (due.empty()) {
        stream_cv.wait(stream_mu);
      } else {
        stream_cv.wait_until(stream_mu, due.begin()->first);
      }
    }
  }

  static ssize_t read_stream(void* cls, uint64_t, char* buf, size_t max) {
    auto* s = static_cast<Stream*>(cls);
    Impl& self = *s->server;
    {
      MutexLock lock(self.stream_mu);
      if (self.stopping) return MHD_CONTENT_READER_END_OF_STREAM;
      s->parking.get(self.stream_mu).woken = false;
    }
    const auto now = HttpStream::Clock::now();
    auto retry_at = now + std::chrono::seconds(1);
    long n = -1;
    try {
      n = s->body->read(buf, max, now, retry_at);
    } catch (const std::exception& e) {
      spdlog::warn("http: stream failed: {}", e.what());
    } catch (...) {
    }
    if (n > 0) return static_cast<ssize_t>(std::min<std::size_t>(static_cast<std::size_t>(n), max));
    if (n < 0) return MHD_CONTENT_READER_END_OF_STREAM;
    MutexLock lock(self.stream_mu);
    if (self.stopping) return MHD_CONTENT_READER_END_OF_STREAM;
    Parking& p = s->parking.get(self.stream_mu);
    if (p.woken) return 0;  // woken while reading: ask again at once
    p.parked = true;
    p.retry_at = retry_at;
    const bool earliest = self.due.empty() || retry_at < self.due.begin()->first;
    self.due.emplace(retry_at, s->id);
    MHD_suspend_connection(s->connection);
    if (earliest) self.stream_cv.notify_one();
    return 0;
  }

  static void free_stream(void* cls) {
    auto* s = static_cast<Stream*>(cls);
    {
      MutexLock lock(s->server->stream_mu);
      s->server->streams.erase(s->id);
    }
    delete s;
  }

  MHD_Result send(MHD_Connection* connection, const HttpResponse& r) {
    MHD_Response* response = nullptr;
    if (r.stream) {
      auto* s = new Stream(*this);
      s->connection = connection;
      s->body = r.stream;
      s->kind = r.stream_kind;
      {
        MutexLock lock(stream_mu);
        s->id = next_stream_id++;
        streams.emplace(s->id, s);
      }
      response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, &read_stream, s, &free_stream);
      if (!response) free_stream(s);
    } else if (r.data) {
      auto* owner = new std::shared_ptr<const void>(r.owner);
      response = MHD_create_response_from_buffer_with_free_callback_cls(r.size, const_cast<std::uint8_t*>(r.data), &free_owner,
                                                                        owner);
      if (!response) delete owner;
    } else {
      response = MHD_create_response_from_buffer(r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
    }
    if (!response) return MHD_NO;
    if (!r.content_type.empty()) MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    for (const auto& [name, value] : r.headers) MHD_add_response_header(response, name.c_str(), value.c_str());
    const MHD_Result queued = MHD_queue_response(connection, static_cast<unsigned int>(r.status), response);
    MHD_destroy_response(response);
    return queued;
  }

  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method, const char*,
                               const char* upload_data, size_t* upload_data_size, void** con_cls) {
    Impl& self = *static_cast<Impl*>(cls);
    auto* ctx = static_cast<RequestContext*>(*con_cls);
    if (!ctx) {  // first call: headers only
      ctx = new RequestContext;
      *con_cls = ctx;
      const char* length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
      if (length && std::strtoull(length, nullptr, 10) > self.options.max_body_bytes) ctx->too_large = true;
      return MHD_YES;
    }
    if (*upload_data_size > 0) {  // a body chunk
      if (!ctx->too_large) {
        if (ctx->body.size() + *upload_data_size > self.options.max_body_bytes) {
          ctx->too_large = true;
          ctx->body.clear();
          ctx->body.shrink_to_fit();
        } else {
          ctx->body.append(upload_data, *upload_data_size);
        }
      }
      *upload_data_size = 0;  // consumed (or discarded)
      return MHD_YES;
    }
    self.requests.fetch_add(1, std::memory_order_relaxed);
    HttpResponse response;
    if (ctx->too_large) {
      json_error(response, 413, "request body larger than " + std::to_string(self.options.max_body_bytes) + " bytes");
      return self.send(connection, response);
    }
    HttpRequest request;
    request.method = method ? method : "";
    request.path = url ? url : "";
    request.body = std::move(ctx->body);
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, &collect, &request.query);
    MHD_get_connection_values(connection, MHD_HEADER_KIND, &collect_lower, &request.headers);
    try {
      self.handler(request, response);
    } catch (const std::exception& e) {
      spdlog::warn("http: {} {}: {}", request.method, request.path, e.what());
      json_error(response, 500, "internal error");
    } catch (...) {
      json_error(response, 500, "internal error");
    }
    return self.send(connection, response);
  }

  static void on_completed(void*, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
    delete static_cast<RequestContext*>(*con_cls);
    *con_cls = nullptr;
  }
};

Result<std::unique_ptr<HttpServer>> HttpServer::start(const HttpServerOptions& options, Handler handler) {
  if (options.port < 0 || options.port > 65535) return Error{ErrorCode::invalid_argument, "http: port must be 0..65535"};
  sockaddr_storage address{};
  socklen_t address_size = 0;
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  const std::string host = options.host == "localhost" ? "127.0.0.1" : options.host;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(options.port));
    address_size = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(options.port));
    address_size = sizeof(sockaddr_in6);
    flags |= MHD_USE_IPv6;
  } else {
    return Error{ErrorCode::invalid_argument, "http: listen address '" + options.host + "' is not an IP address"};
  }
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->impl_ = std::make_unique<Impl>();
  Impl& impl = *server->impl_;
  impl.options = options;
  impl.handler = std::move(handler);
  impl.daemon = MHD_start_daemon(
      flags, static_cast<std::uint16_t>(options.port), nullptr, nullptr, &Impl::on_request, &impl,
      MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&address),
      // One polling thread is no pool (a pool size of 0 or 1 draws a warning): the timeout twice.
      options.threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned int>(options.threads > 1 ? options.threads : std::max(1, options.idle_timeout_s)),
      MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned int>(std::max(1, options.max_connections)),
      MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned int>(std::max(1, options.idle_timeout_s)),
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<size_t>(std::max<std::size_t>(4096, options.max_header_bytes)),
      MHD_OPTION_NOTIFY_COMPLETED, &Impl::on_completed, nullptr,
      MHD_OPTION_EXTERNAL_LOGGER, &log_from_mhd, nullptr,
      MHD_OPTION_END);
  (void)address_size;
  if (!impl.daemon) {
    return Error{ErrorCode::unavailable, "http: cannot listen on " + options.host + ":" + std::to_string(options.port) +
                                             " (address in use or not available)"};
  }
  impl.resumer = std::thread([&impl] { impl.resume_loop(); });
  const MHD_DaemonInfo* info = MHD_get_daemon_info(impl.daemon, MHD_DAEMON_INFO_BIND_PORT);
  server->port_ = info ? info->port : options.port;
  return server;
}

HttpServer::~HttpServer() = default;

std::uint64_t HttpServer::requests() const { return impl_->requests.load(std::memory_order_relaxed); }

std::size_t HttpServer::streams() const {
  MutexLock lock(impl_->stream_mu);
  return impl_->streams.size();
}

void HttpServer::wake(int stream_kind) {
  std::vector<MHD_Connection*> parked;
  {
    MutexLock lock(impl_->stream_mu);
    for (auto& [id, s] : impl_->streams) {
      if (s->kind != stream_kind) continue;
      Impl::Parking& p = s->parking.get(impl_->stream_mu);
      if (p.parked) {
        p.parked = false;
        parked.push_back(s->connection);
      } else {
        p.woken = true;
      }
    }
  }
  for (MHD_Connection* c : parked) MHD_resume_connection(c);
}

}  // namespace vigil
