// Redis: one connection to a redis-server through hiredis (Debian libhiredis-dev), with the
// commands given as argument vectors (binary-safe: tensors travel as bulk strings) and sent
// one at a time or pipelined (every command of a batch written, then every reply read: one
// round trip).
//
//   auto url = parse_redis_url("redis://:secret@10.0.0.5:6379/0");
//   auto redis = RedisConnection::connect(*url, std::chrono::seconds(2));
//   auto reply = (*redis)->command({"XADD", "s", "*", "k", "v"});
//
// Errors: unavailable for a server that cannot be reached or a connection that broke (the
// connection is then closed: connect again, with backoff); invalid_argument for a wrong
// password or an error reply to a command; deadline_exceeded for a read that timed out.
// Threading: one caller at a time per connection (each thread that talks to Redis has its own).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/core/status.h"

struct redisContext;

namespace vigil {

struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;  // empty: no AUTH
  std::string user;      // with a password: AUTH user password (Redis 6 ACLs)
  int db = 0;
  // The URL without its password, for logs and status pages.
  std::string redacted() const;
};

// redis://[[user]:password@]host[:port][/db]; invalid_argument names what is wrong.
Result<RedisUrl> parse_redis_url(std::string_view text);

// A reply, owned: what hiredis parsed, copied out of its buffers.
struct RedisReply {
  enum class Type { nil, string, status, integer, array, error };
  Type type = Type::nil;
  std::string str;  // string, status and error replies
  long long integer = 0;
  std::vector<RedisReply> elements;

  // In a flat [field, value, field, value, ...] array (a stream entry's fields, HGETALL,
  // XINFO): the value of `name`, or null.
  const RedisReply* field(std::string_view name) const {
    for (std::size_t i = 0; i + 1 < elements.size(); i += 2) {
      if (elements[i].str == name) return &elements[i + 1];
    }
    return nullptr;
  }
  bool is_nil() const { return type == Type::nil; }
  bool is_error() const { return type == Type::error; }
  bool is_array() const { return type == Type::array; }
};

using RedisCommand = std::vector<std::string>;

class RedisConnection {
 public:
  // Connects, authenticates and selects the URL's db; `timeout` bounds the connect and every
  // later read and write (a blocking command asks for longer with its own BLOCK argument:
  // read_timeout is then raised for it).
  static Result<std::unique_ptr<RedisConnection>> connect(const RedisUrl& url, std::chrono::milliseconds timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // One command; an error reply is returned as a reply (type error), not as an Error.
  Result<RedisReply> command(const RedisCommand& args);
  // Every command written, then every reply read, in order: one round trip.
  Result<std::vector<RedisReply>> pipeline(const std::vector<RedisCommand>& commands);
  // A command that blocks in the server up to `block` (XREADGROUP ... BLOCK ms): the read
  // waits that long plus the connection's timeout.
  Result<RedisReply> blocking_command(const RedisCommand& args, std::chrono::milliseconds block);

  // Round trips and bytes written and read since connecting (for the per-frame figures).
  std::uint64_t round_trips() const { return round_trips_; }
  std::uint64_t bytes_out() const { return bytes_out_; }
  std::uint64_t bytes_in() const { return bytes_in_; }
  bool broken() const { return broken_; }

 private:
  RedisConnection(redisContext* context, std::chrono::milliseconds timeout);
  Status append(const RedisCommand& args);
  Result<RedisReply> read_reply();
  Error failure(std::string_view what);

  redisContext* context_;
  std::chrono::milliseconds timeout_;
  bool broken_ = false;
  std::uint64_t round_trips_ = 0, bytes_out_ = 0, bytes_in_ = 0;
};

// An error reply as an Error (invalid_argument with the server's message), or ok.
Status reply_status(const RedisReply& reply, std::string_view what);

}  // namespace vigil
