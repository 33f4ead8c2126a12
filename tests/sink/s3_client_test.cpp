// S3Client: configuration from the environment, URLs and digests, and real requests to an S3
// server on loopback (s3rver).
#include "vigil/sink/s3_client.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace vigil {
namespace {

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

Result<S3Config> config_from(const std::map<std::string, std::string>& env) {
  return s3_config_from_environment([&](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

S3Config local(const test::S3Server& server) {
  S3Config c;
  c.endpoint = server.endpoint();
  c.access_key = "S3RVER";
  c.secret_key = "S3RVER";
  return c;
}

// A loopback port nothing listens on (bound, then closed).
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n), 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST(S3ConfigTest, ComesFromTheEnvironmentAsTheAwsToolsReadIt) {
  auto c = config_from({{"AWS_ACCESS_KEY_ID", "AK"},
                        {"AWS_SECRET_ACCESS_KEY", "SK"},
                        {"AWS_SESSION_TOKEN", "TOKEN"},
                        {"AWS_DEFAULT_REGION", "eu-west-1"},
                        {"AWS_ENDPOINT_URL", "http://127.0.0.1:9000/"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->access_key, "AK");
  EXPECT_EQ(c->secret_key, "SK");
  EXPECT_EQ(c->session_token, "TOKEN");
  EXPECT_EQ(c->region, "eu-west-1");
  EXPECT_EQ(c->endpoint, "http://127.0.0.1:9000");
  // AWS_REGION over AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_S3 over AWS_ENDPOINT_URL.
  c = config_from({{"AWS_ACCESS_KEY_ID", "AK"},
                   {"AWS_SECRET_ACCESS_KEY", "SK"},
                   {"AWS_REGION", "ap-south-1"},
                   {"AWS_DEFAULT_REGION", "eu-west-1"},
                   {"AWS_ENDPOINT_URL_S3", "https://s3.example.com"},
                   {"AWS_ENDPOINT_URL", "http://other"}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->region, "ap-south-1");
  EXPECT_EQ(c->endpoint, "https://s3.example.com");
  c = config_from({{"AWS_ACCESS_KEY_ID", "AK"}, {"AWS_SECRET_ACCESS_KEY", "SK"}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->region, "us-east-1");
  EXPECT_EQ(c->endpoint, "");
}

TEST(S3ConfigTest, MissingKeysOrAnEndpointThatIsNotHttpAreErrors) {
  auto c = config_from({{"AWS_ACCESS_KEY_ID", "AK"}});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(c.error().message.find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
  c = config_from({{"AWS_ACCESS_KEY_ID", "AK"}, {"AWS_SECRET_ACCESS_KEY", "SK"}, {"AWS_ENDPOINT_URL", "ftp://x"}});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("ftp://x"), std::string::npos);
}

TEST(S3UrlTest, BucketAndPrefix) {
  auto l = parse_s3_url("s3://my-bucket/harvests/ep1");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->bucket, "my-bucket");
  EXPECT_EQ(l->prefix, "harvests/ep1/");
  l = parse_s3_url("s3://my.bucket");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->prefix, "");
  l = parse_s3_url("s3://abc//x/");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->prefix, "x/");
  for (const char* bad : {"http://bucket/x", "s3://", "s3://ab/x", "s3://Upper/x", "s3://under_score", "bucket/x"}) {
    const auto r = parse_s3_url(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  }
}

TEST(S3UrlTest, ObjectUrlsAreEncodedAndAddressedAsTheServiceWants) {
  EXPECT_EQ(s3_encode_key("crops/12.png"), "crops/12.png");
  EXPECT_EQ(s3_encode_key("a b+c/é~_-."), "a%20b%2Bc/%C3%A9~_-.");
  S3Config aws;
  aws.region = "eu-west-1";
  EXPECT_EQ(s3_object_url(aws, "bkt", "p/crops/1.png"), "https://bkt.s3.eu-west-1.amazonaws.com/p/crops/1.png");
  EXPECT_EQ(s3_object_url(aws, "b.k.t", "k"), "https://s3.eu-west-1.amazonaws.com/b.k.t/k");
  S3Config local;
  local.endpoint = "http://127.0.0.1:9000";
  EXPECT_EQ(s3_object_url(local, "bkt", "a b"), "http://127.0.0.1:9000/bkt/a%20b");
  EXPECT_EQ(s3_object_url(local, "bkt", ""), "http://127.0.0.1:9000/bkt");
}

TEST(S3UrlTest, ErrorDocumentsAndDigests) {
  EXPECT_EQ(s3_error_text("<?xml?><Error><Code>NoSuchBucket</Code><Message>The bucket does not exist</Message></Error>"),
            "NoSuchBucket: The bucket does not exist");
  EXPECT_EQ(s3_error_text("<html>bad gateway</html>"), "");
  EXPECT_EQ(md5_hex(bytes_of("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_hex(bytes_of("hello\n")), "b1946ac92492d2347c6235b4d2611184");
  EXPECT_EQ(sha256_hex(bytes_of("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(S3ClientTest, PutsAndHeadsObjectsOnARealServer) {
  test::S3Server server;
  ASSERT_TRUE(server.ready());
  auto client = S3Client::create(local(server));
  ASSERT_TRUE(client.ok());
  auto bucket = (*client)->head_bucket("test");
  ASSERT_TRUE(bucket.ok()) << bucket.error().message;
  EXPECT_EQ(bucket->status, 200);
  const std::string body = "the bytes of a crop \x01\x02\x03";
  auto put = (*client)->put_object("test", "run/crops/1.png", bytes_of(body), "image/png");
  ASSERT_TRUE(put.ok()) << put.error().message;
  EXPECT_EQ(put->status, 200) << put->error;
  EXPECT_EQ(put->etag, md5_hex(bytes_of(body)));
  EXPECT_EQ(server.object("run/crops/1.png"), body);
  EXPECT_EQ(server.stored("run/crops/1.png"), 1);
  // An empty object, and a key that needs encoding, on the same connection.
  put = (*client)->put_object("test", "run/empty file", {}, "");
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->status, 200) << put->error;
  auto head = (*client)->head_object("test", "run/crops/1.png");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->etag, md5_hex(bytes_of(body)));
  head = (*client)->head_object("test", "run/crops/2.png");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->status, 404);
}

// tests/scripts/sigv4_server.py: checks AWS Signature V4 as AWS documents it (s3rver does
// not), for the keys it is started with.
class SigV4Server {
 public:
  SigV4Server(const std::string& access_key, const std::string& secret_key, const std::string& region)
      : process_({"/usr/bin/python3", std::string(VIGIL_SOURCE_DIR) + "/tests/scripts/sigv4_server.py", access_key, secret_key, region},
                 dir_.file("log")) {
    const std::string listening = "listening on 127.0.0.1:";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (port_ == 0 && std::chrono::steady_clock::now() < deadline && !process_.exited()) {
      for (const std::string& line : test::read_lines(dir_.file("log"))) {
        if (line.rfind(listening, 0) == 0) port_ = std::stoi(line.substr(listening.size()));
      }
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_GT(port_, 0) << test::read_file(dir_.file("log"));
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  test::TempDir dir_;
  test::ChildProcess process_;
  int port_ = 0;
};

TEST(S3ClientTest, RequestsAreSignedAsAwsSpecifies) {
  SigV4Server server("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1");
  S3Config config;
  config.endpoint = server.endpoint();
  config.region = "eu-west-1";
  config.access_key = "AKIDEXAMPLE";
  config.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  auto client = S3Client::create(config);
  ASSERT_TRUE(client.ok());
  const std::string body(70000, 'x');
  for (const std::string key : {"run/crops/1.png", "run/a key+with=odd&chars~.json", "run/empty"}) {
    auto put = (*client)->put_object("bucket", key, key == "run/empty" ? std::span<const std::uint8_t>{} : bytes_of(body), "image/png");
    ASSERT_TRUE(put.ok()) << put.error().message;
    EXPECT_EQ(put->status, 200) << key << ": " << put->error;
  }
  auto head = (*client)->head_object("bucket", "run/crops/1.png");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->status, 200);
  auto bucket = (*client)->head_bucket("bucket");
  ASSERT_TRUE(bucket.ok());
  EXPECT_EQ(bucket->status, 200);
  // Temporary credentials: the token is sent, and signed.
  config.session_token = "FQoGZXIvYXdzEXAMPLETOKEN";
  auto temporary = S3Client::create(config);
  ASSERT_TRUE(temporary.ok());
  auto put = (*temporary)->put_object("bucket", "run/t", bytes_of("t"), "");
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->status, 200) << put->error;
  // The wrong secret is caught by the signature, not by the key id.
  config.session_token.clear();
  config.secret_key = "not-the-secret";
  auto wrong = S3Client::create(config);
  ASSERT_TRUE(wrong.ok());
  put = (*wrong)->put_object("bucket", "run/crops/1.png", bytes_of(body), "image/png");
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->status, 403);
  EXPECT_NE(put->error.find("SignatureDoesNotMatch"), std::string::npos) << put->error;
}

TEST(S3ClientTest, AnswersAndFailuresAreTold) {
  test::S3Server server;
  ASSERT_TRUE(server.ready());
  S3Config config = local(server);
  auto client = S3Client::create(config);
  ASSERT_TRUE(client.ok());
  auto missing = (*client)->put_object("nobucket", "k", bytes_of("x"), "");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->error.find("NoSuchBucket"), std::string::npos) << missing->error;
  config.access_key = "NOBODY";
  auto stranger = S3Client::create(config);
  ASSERT_TRUE(stranger.ok());
  auto refused = (*stranger)->put_object("test", "k", bytes_of("x"), "");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 403);
  EXPECT_NE(refused->error.find("InvalidAccessKeyId"), std::string::npos) << refused->error;
  EXPECT_EQ(server.stored_total(), 0);
  config = local(server);
  config.endpoint = "http://127.0.0.1:" + std::to_string(closed_port());
  auto nowhere = S3Client::create(config);
  ASSERT_TRUE(nowhere.ok());
  auto unreachable = (*nowhere)->head_bucket("test");
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.error().code, ErrorCode::unavailable);
  EXPECT_FALSE(unreachable.error().message.empty());
}

}  // namespace
}  // namespace vigil
