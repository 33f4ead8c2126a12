// RedisConnection against a real redis-server on loopback: URLs, errors that name their
// cause, pipelining as one round trip, binary-safe values.
#include "vigil/cluster/redis.h"

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace vigil {
namespace {

using std::chrono::milliseconds;

TEST(RedisUrlTest, ParsesHostPortPasswordAndDbAndRefusesTheRest) {
  auto url = parse_redis_url("redis://:s3cret@10.0.0.5:6380/2");
  ASSERT_TRUE(url.ok()) << url.error().message;
  EXPECT_EQ(url->host, "10.0.0.5");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->password, "s3cret");
  EXPECT_EQ(url->db, 2);
  EXPECT_EQ(url->redacted(), "redis://:***@10.0.0.5:6380/2");
  auto plain = parse_redis_url("redis://cache");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->port, 6379);
  EXPECT_TRUE(plain->password.empty());
  for (const char* bad : {"http://x:1", "redis://", "redis://h:0", "redis://h:99999", "redis://h:abc", "redis://h/x", "redis://user@h"}) {
    auto r = parse_redis_url(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << bad;
  }
}

TEST(RedisConnectionTest, AnUnreachableServerIsUnavailableAtOnce) {
  RedisUrl url;
  url.port = test::free_port();
  const auto start = std::chrono::steady_clock::now();
  auto conn = RedisConnection::connect(url, milliseconds(1000));
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.error().code, ErrorCode::unavailable);
  EXPECT_NE(conn.error().message.find("unreachable"), std::string::npos) << conn.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(RedisConnectionTest, AWrongOrMissingPasswordIsRefusedWithOneClearLine) {
  test::RedisServer server("right-password");
  ASSERT_TRUE(server.ready());
  RedisUrl url = *parse_redis_url(server.url());
  auto ok = RedisConnection::connect(url, milliseconds(2000));
  ASSERT_TRUE(ok.ok()) << ok.error().message;

  url.password = "wrong";
  auto wrong = RedisConnection::connect(url, milliseconds(2000));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(wrong.error().message.find("authentication failed"), std::string::npos) << wrong.error().message;
  EXPECT_EQ(wrong.error().message.find("wrong"), std::string::npos) << "the password is printed: " << wrong.error().message;

  url.password.clear();
  auto none = RedisConnection::connect(url, milliseconds(2000));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(none.error().message.find("needs a password"), std::string::npos) << none.error().message;
}

TEST(RedisConnectionTest, APipelineIsOneRoundTripAndValuesAreBinarySafe) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  auto conn = RedisConnection::connect(*parse_redis_url(server.url()), milliseconds(2000));
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  RedisConnection& redis = **conn;
  const std::uint64_t trips = redis.round_trips();
  std::string binary("a\0b\r\n\xff", 6);
  std::vector<RedisCommand> commands;
  for (int i = 0; i < 100; ++i) commands.push_back({"RPUSH", "list", binary + std::to_string(i)});
  commands.push_back({"LRANGE", "list", "0", "-1"});
  commands.push_back({"NOSUCHCOMMAND"});
  auto replies = redis.pipeline(commands);
  ASSERT_TRUE(replies.ok()) << replies.error().message;
  EXPECT_EQ(redis.round_trips(), trips + 1);
  ASSERT_EQ(replies->size(), 102u);
  EXPECT_EQ((*replies)[99].integer, 100);
  ASSERT_EQ((*replies)[100].elements.size(), 100u);
  EXPECT_EQ((*replies)[100].elements[7].str, binary + "7");
  EXPECT_TRUE((*replies)[101].is_error());
  EXPECT_FALSE(reply_status((*replies)[101], "x").ok());
  EXPECT_GT(redis.bytes_out(), 100u * binary.size());
}

TEST(RedisConnectionTest, AServerThatGoesAwayBreaksTheConnectionWithUnavailable) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  auto conn = RedisConnection::connect(*parse_redis_url(server.url()), milliseconds(2000));
  ASSERT_TRUE(conn.ok());
  server.stop();
  auto reply = (*conn)->command({"PING"});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::unavailable) << reply.error().message;
  EXPECT_TRUE((*conn)->broken());
  ASSERT_TRUE(server.start());
  auto again = RedisConnection::connect(*parse_redis_url(server.url()), milliseconds(2000));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ((*again)->command({"PING"})->str, "PONG");
}

}  // namespace
}  // namespace vigil
