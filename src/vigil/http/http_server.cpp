#include "vigil/http/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

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

void free_owner(void* cls) { delete static_cast<std::shared_ptr<const void>*>(cls); }

MHD_Result send(MHD_Connection* connection, const HttpResponse& r) {
  MHD_Response* response = nullptr;
  if (r.data) {
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

void log_from_mhd(void*, const char* format, va_list args) {
  char line[512];
  std::vsnprintf(line, sizeof line, format, args);
  std::size_t n = std::strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
  spdlog::debug("http: {}", line);
}

}  // namespace

void json_error(HttpResponse& response, int status, const std::string& message) {
  response.status = status;
  response.content_type = "application/json";
  response.body = nlohmann::json{{"error", message}}.dump();
  response.data = nullptr;
  response.owner.reset();
}

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  MHD_Daemon* daemon = nullptr;
  std::atomic<std::uint64_t> requests{0};

  ~Impl() {
    if (daemon) MHD_stop_daemon(daemon);
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
      return send(connection, response);
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
    return send(connection, response);
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
      MHD_OPTION_THREAD_POOL_SIZE, static_cast<unsigned int>(std::max(1, options.threads)),
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
  const MHD_DaemonInfo* info = MHD_get_daemon_info(impl.daemon, MHD_DAEMON_INFO_BIND_PORT);
  server->port_ = info ? info->port : options.port;
  return server;
}

HttpServer::~HttpServer() = default;

std::uint64_t HttpServer::requests() const { return impl_->requests.load(std::memory_order_relaxed); }

}  // namespace vigil
