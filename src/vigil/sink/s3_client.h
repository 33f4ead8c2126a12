// S3Client: PUT and HEAD of objects in S3-compatible storage (AWS S3, MinIO, Ceph, s3rver...),
// signed with AWS Signature Version 4 by libcurl (CURLOPT_AWS_SIGV4).
//
// Where to and as whom comes from the environment, as the AWS tools read it:
//   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY   the keys (required)
//   AWS_SESSION_TOKEN                          temporary credentials (optional)
//   AWS_REGION, else AWS_DEFAULT_REGION        the signing region (default us-east-1)
//   AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL another S3-compatible service
//                                              (http://host:port); objects are then
//                                              addressed path-style: ENDPOINT/BUCKET/KEY
// Without an endpoint, objects go to AWS: https://BUCKET.s3.REGION.amazonaws.com/KEY.
//
// Every request carries x-amz-content-sha256 (the payload's SHA-256, signed) and a PUT its
// Content-MD5, so the service refuses a body damaged on the way.
//
// Threading: an S3Client is used by one thread at a time (it keeps one connection open);
// give each thread its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "vigil/core/status.h"

namespace vigil {

struct S3Config {
  std::string endpoint;  // "" for AWS, else scheme://host[:port] (path-style addressing)
  std::string region = "us-east-1";
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  long connect_timeout_ms = 10000;
  long stall_timeout_s = 30;  // a transfer that moves nothing for this long fails
};

// The config from environment variables, read through `getenv` (std::getenv by default).
// Errors: invalid_argument when the keys are missing or the endpoint is not http(s)://.
Result<S3Config> s3_config_from_environment(const std::function<const char*(const char*)>& getenv = {});

// "s3://BUCKET/PREFIX" (PREFIX may be empty; it is used as given, a trailing "/" added when
// missing). Errors: invalid_argument, naming what is wrong.
struct S3Location {
  std::string bucket;
  std::string prefix;  // "" or ends with "/"
};
Result<S3Location> parse_s3_url(std::string_view url);

// Percent-encodes a key for a URL path (RFC 3986 unreserved characters and "/" kept).
std::string s3_encode_key(std::string_view key);

// The object's URL (or the bucket's, for an empty key) under `config`.
std::string s3_object_url(const S3Config& config, std::string_view bucket, std::string_view key);

// "<Code>X</Code>" and "<Message>Y</Message>" of an S3 error body, as "X: Y" ("" when none).
std::string s3_error_text(std::string_view body);

// Hex digests of bytes (FFmpeg's libavutil).
std::string md5_hex(std::span<const std::uint8_t> bytes);
std::string sha256_hex(std::span<const std::uint8_t> bytes);

struct S3Response {
  long status = 0;        // HTTP status
  std::string etag;       // without quotes ("" when none)
  std::string error;      // s3_error_text of the body, for a status >= 300
};

class S3Client {
 public:
  // Errors: internal when libcurl cannot start.
  static Result<std::unique_ptr<S3Client>> create(const S3Config& config);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // A transport failure (no connection, timeout, reset) is an unavailable error whose message
  // says what libcurl saw; any HTTP answer is a response, whatever its status.
  Result<S3Response> put_object(std::string_view bucket, std::string_view key, std::span<const std::uint8_t> body,
                                std::string_view content_type);
  Result<S3Response> head_object(std::string_view bucket, std::string_view key);
  Result<S3Response> head_bucket(std::string_view bucket);

  const S3Config& config() const { return config_; }

 private:
  explicit S3Client(const S3Config& config);
  Result<S3Response> request(const char* method, const std::string& url, std::span<const std::uint8_t> body,
                             std::string_view content_type, std::string_view content_md5);

  S3Config config_;
  void* curl_ = nullptr;  // CURL*
  std::string sigv4_;     // "aws:amz:REGION:s3"
  std::string body_, etag_;
  char error_buffer_[256] = {};
};

}  // namespace vigil
