#include "vigil/cluster/redis.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <charconv>

namespace vigil {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

bool parse_int(std::string_view text, int& out) {
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && p == end;
}

RedisReply copy_reply(const redisReply* r, std::uint64_t& bytes) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::string; break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::status; break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::error; break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::integer; break;
    case REDIS_REPLY_ARRAY: out.type = RedisReply::Type::array; break;
    default: out.type = RedisReply::Type::nil; break;
  }
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR) {
    out.str.assign(r->str, r->len);
    bytes += r->len + 8;
  } else if (r->type == REDIS_REPLY_INTEGER) {
    out.integer = r->integer;
    bytes += 8;
  } else if (r->type == REDIS_REPLY_ARRAY) {
    out.elements.reserve(r->elements);
    for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(copy_reply(r->element[i], bytes));
    bytes += 8;
  }
  return out;
}

}  // namespace

std::string RedisUrl::redacted() const {
  std::string out = "redis://";
  if (!password.empty()) out += user + ":***@";
  out += host + ":" + std::to_string(port);
  if (db != 0) out += "/" + std::to_string(db);
  return out;
}

Result<RedisUrl> parse_redis_url(std::string_view text) {
  constexpr std::string_view scheme = "redis://";
  const auto bad = [&](const std::string& why) {
    return Error{ErrorCode::invalid_argument, "redis URL: " + why + " (expected redis://[:password@]host[:port][/db])"};
  };
  if (text.substr(0, scheme.size()) != scheme) return bad("it must start with redis://");
  std::string_view rest = text.substr(scheme.size());
  RedisUrl url;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = auth.find(':');
    if (colon == std::string_view::npos) return bad("credentials must be user:password or :password");
    url.user = std::string(auth.substr(0, colon));
    url.password = std::string(auth.substr(colon + 1));
    if (url.password.empty()) return bad("empty password");
  }
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty() && (!parse_int(db, url.db) || url.db < 0)) return bad("db '" + std::string(db) + "' is not a number");
  }
  if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    const std::string_view port = rest.substr(colon + 1);
    if (!parse_int(port, url.port) || url.port < 1 || url.port > 65535) return bad("port '" + std::string(port) + "' is not 1..65535");
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return bad("no host");
  url.host = std::string(rest);
  return url;
}

Status reply_status(const RedisReply& reply, std::string_view what) {
  if (!reply.is_error()) return {};
  return Error{ErrorCode::invalid_argument, std::string(what) + ": " + reply.str};
}

RedisConnection::RedisConnection(redisContext* context, std::chrono::milliseconds timeout)
    : context_(context), timeout_(timeout) {}

RedisConnection::~RedisConnection() { redisFree(context_); }

Result<std::unique_ptr<RedisConnection>> RedisConnection::connect(const RedisUrl& url, std::chrono::milliseconds timeout) {
  redisContext* c = redisConnectWithTimeout(url.host.c_str(), url.port, to_timeval(timeout));
  if (c == nullptr) return Error{ErrorCode::resource_exhausted, "redis: cannot allocate a connection"};
  if (c->err != 0) {
    Error error{ErrorCode::unavailable, "redis " + url.redacted() + " unreachable: " + std::string(c->errstr)};
    redisFree(c);
    return error;
  }
  redisSetTimeout(c, to_timeval(timeout));
  std::unique_ptr<RedisConnection> conn(new RedisConnection(c, timeout));
  if (!url.password.empty()) {
    RedisCommand auth = url.user.empty() ? RedisCommand{"AUTH", url.password} : RedisCommand{"AUTH", url.user, url.password};
    auto reply = conn->command(auth);
    if (!reply.ok()) return reply.error();
    if (reply->is_error()) return Error{ErrorCode::invalid_argument, "redis " + url.redacted() + ": authentication failed (" + reply->str + ")"};
  }
  auto ping = conn->command(url.db != 0 ? RedisCommand{"SELECT", std::to_string(url.db)} : RedisCommand{"PING"});
  if (!ping.ok()) return ping.error();
  if (ping->is_error()) {
    const bool auth = ping->str.rfind("NOAUTH", 0) == 0;
    return Error{ErrorCode::invalid_argument,
                 "redis " + url.redacted() + ": " + (auth ? "the server needs a password (redis://:PASSWORD@host:port)" : ping->str)};
  }
  return conn;
}

Error RedisConnection::failure(std::string_view what) {
  broken_ = true;
  const bool timeout = context_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
  return Error{timeout ? ErrorCode::deadline_exceeded : ErrorCode::unavailable,
               "redis " + std::string(what) + ": " + (context_->errstr[0] != 0 ? std::string(context_->errstr) : "connection lost")};
}

Status RedisConnection::append(const RedisCommand& args) {
  std::vector<const char*> argv(args.size());
  std::vector<std::size_t> lens(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    argv[i] = args[i].data();
    lens[i] = args[i].size();
    bytes_out_ += args[i].size() + 8;
  }
  if (redisAppendCommandArgv(context_, static_cast<int>(args.size()), argv.data(), lens.data()) != REDIS_OK) {
    return failure("write");
  }
  return {};
}

Result<RedisReply> RedisConnection::read_reply() {
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) return failure("read");
  RedisReply reply = copy_reply(static_cast<redisReply*>(raw), bytes_in_);
  freeReplyObject(raw);
  return reply;
}

Result<RedisReply> RedisConnection::command(const RedisCommand& args) {
  if (broken_) return Error{ErrorCode::unavailable, "redis: connection lost"};
  VIGIL_RETURN_IF_ERROR(append(args));
  ++round_trips_;
  return read_reply();
}

Result<std::vector<RedisReply>> RedisConnection::pipeline(const std::vector<RedisCommand>& commands) {
  if (broken_) return Error{ErrorCode::unavailable, "redis: connection lost"};
  for (const auto& c : commands) VIGIL_RETURN_IF_ERROR(append(c));
  ++round_trips_;
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    auto reply = read_reply();
    if (!reply.ok()) return reply.error();
    replies.push_back(std::move(reply).value());
  }
  return replies;
}

Result<RedisReply> RedisConnection::blocking_command(const RedisCommand& args, std::chrono::milliseconds block) {
  redisSetTimeout(context_, to_timeval(block + timeout_));
  auto reply = command(args);
  if (!broken_) redisSetTimeout(context_, to_timeval(timeout_));
  return reply;
}

}  // namespace vigil
