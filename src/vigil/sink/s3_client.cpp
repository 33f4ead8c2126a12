#include "vigil/sink/s3_client.h"

#include <curl/curl.h>

#include <cstdlib>
#include <mutex>

extern "C" {
#include <libavutil/base64.h>
#include <libavutil/md5.h>
#include <libavutil/mem.h>
#include <libavutil/sha.h>
}

namespace vigil {

namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string hex(const std::uint8_t* bytes, std::size_t n) {
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 15]);
  }
  return out;
}

void md5(std::span<const std::uint8_t> bytes, std::uint8_t digest[16]) {
  av_md5_sum(digest, bytes.data(), bytes.size());
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return std::string(s);
}

std::string between(std::string_view body, std::string_view open, std::string_view close) {
  const std::size_t a = body.find(open);
  if (a == std::string_view::npos) return {};
  const std::size_t b = body.find(close, a + open.size());
  if (b == std::string_view::npos) return {};
  return std::string(body.substr(a + open.size(), b - a - open.size()));
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() < 64 * 1024) body->append(data, size * n);  // an error document; the rest is not needed
  return size * n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  const std::string_view line(data, size * n);
  const std::size_t colon = line.find(':');
  if (colon != std::string_view::npos && colon == 4 && curl_strnequal(line.data(), "etag", 4)) {
    std::string value = trim(line.substr(colon + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    *static_cast<std::string*>(user) = value;
  }
  return size * n;
}

}  // namespace

std::string md5_hex(std::span<const std::uint8_t> bytes) {
  std::uint8_t digest[16];
  md5(bytes, digest);
  return hex(digest, sizeof digest);
}

std::string sha256_hex(std::span<const std::uint8_t> bytes) {
  const std::unique_ptr<AVSHA, void (*)(void*)> sha(av_sha_alloc(), av_free);
  std::uint8_t digest[32] = {};
  if (sha && av_sha_init(sha.get(), 256) >= 0) {
    av_sha_update(sha.get(), bytes.data(), bytes.size());
    av_sha_final(sha.get(), digest);
  }
  return hex(digest, sizeof digest);
}

Result<S3Config> s3_config_from_environment(const std::function<const char*(const char*)>& getenv) {
  const auto env = [&](const char* name) -> std::string {
    const char* v = getenv ? getenv(name) : std::getenv(name);
    return v ? std::string(v) : std::string();
  };
  S3Config c;
  c.access_key = env("AWS_ACCESS_KEY_ID");
  c.secret_key = env("AWS_SECRET_ACCESS_KEY");
  c.session_token = env("AWS_SESSION_TOKEN");
  if (c.access_key.empty() || c.secret_key.empty()) {
    return Error{ErrorCode::invalid_argument,
                 "uploading needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"};
  }
  c.region = env("AWS_REGION");
  if (c.region.empty()) c.region = env("AWS_DEFAULT_REGION");
  if (c.region.empty()) c.region = "us-east-1";
  c.endpoint = env("AWS_ENDPOINT_URL_S3");
  if (c.endpoint.empty()) c.endpoint = env("AWS_ENDPOINT_URL");
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  if (!c.endpoint.empty() && c.endpoint.rfind("http://", 0) != 0 && c.endpoint.rfind("https://", 0) != 0) {
    return Error{ErrorCode::invalid_argument, "the S3 endpoint " + c.endpoint + " is not an http:// or https:// URL"};
  }
  return c;
}

Result<S3Location> parse_s3_url(std::string_view url) {
  constexpr std::string_view scheme = "s3://";
  if (url.substr(0, scheme.size()) != scheme) {
    return Error{ErrorCode::invalid_argument, "--upload wants s3://BUCKET/PREFIX, not " + std::string(url)};
  }
  std::string_view rest = url.substr(scheme.size());
  const std::size_t slash = rest.find('/');
  S3Location l;
  l.bucket = std::string(rest.substr(0, slash));
  // S3's rules for bucket names: 3 to 63 lowercase letters, digits, dots and hyphens.
  bool valid = l.bucket.size() >= 3 && l.bucket.size() <= 63;
  for (char c : l.bucket) valid = valid && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-');
  if (!valid) {
    return Error{ErrorCode::invalid_argument,
                 "--upload " + std::string(url) + ": \"" + l.bucket + "\" is not a bucket name (3-63 of a-z 0-9 . -)"};
  }
  if (slash != std::string_view::npos) {
    std::string_view prefix = rest.substr(slash + 1);
    while (!prefix.empty() && prefix.front() == '/') prefix.remove_prefix(1);
    l.prefix = std::string(prefix);
    if (!l.prefix.empty() && l.prefix.back() != '/') l.prefix.push_back('/');
  }
  return l;
}

std::string s3_encode_key(std::string_view key) {
  std::string out;
  for (char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
        c == '~' || c == '/') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back("0123456789ABCDEF"[c >> 4]);
      out.push_back("0123456789ABCDEF"[c & 15]);
    }
  }
  return out;
}

std::string s3_object_url(const S3Config& config, std::string_view bucket, std::string_view key) {
  const std::string path = s3_encode_key(key);
  if (!config.endpoint.empty()) return config.endpoint + "/" + std::string(bucket) + (key.empty() ? "" : "/" + path);
  // AWS: virtual-hosted style, except for names with dots (their host would not match the
  // certificate), which go path-style.
  if (bucket.find('.') != std::string_view::npos) {
    return "https://s3." + config.region + ".amazonaws.com/" + std::string(bucket) + (key.empty() ? "" : "/" + path);
  }
  return "https://" + std::string(bucket) + ".s3." + config.region + ".amazonaws.com/" + path;
}

std::string s3_error_text(std::string_view body) {
  const std::string code = between(body, "<Code>", "</Code>");
  const std::string message = between(body, "<Message>", "</Message>");
  if (code.empty()) return message;
  return message.empty() ? code : code + ": " + message;
}

Result<std::unique_ptr<S3Client>> S3Client::create(const S3Config& config) {
  static std::once_flag once;
  static CURLcode global = CURLE_OK;
  std::call_once(once, [] { global = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (global != CURLE_OK) return Error{ErrorCode::internal, std::string("libcurl: ") + curl_easy_strerror(global)};
  std::unique_ptr<S3Client> client(new S3Client(config));
  if (!client->curl_) return Error{ErrorCode::internal, "libcurl: cannot make a handle"};
  return client;
}

S3Client::S3Client(const S3Config& config)
    : config_(config), curl_(curl_easy_init()), sigv4_("aws:amz:" + config.region + ":s3") {}

S3Client::~S3Client() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<S3Response> S3Client::put_object(std::string_view bucket, std::string_view key, std::span<const std::uint8_t> body,
                                        std::string_view content_type) {
  std::uint8_t digest[16];
  md5(body, digest);
  char base64[AV_BASE64_SIZE(16)];
  av_base64_encode(base64, sizeof base64, digest, 16);
  return request("PUT", s3_object_url(config_, bucket, key), body, content_type, base64);
}

Result<S3Response> S3Client::head_object(std::string_view bucket, std::string_view key) {
  return request("HEAD", s3_object_url(config_, bucket, key), {}, {}, {});
}

Result<S3Response> S3Client::head_bucket(std::string_view bucket) {
  return request("HEAD", s3_object_url(config_, bucket, ""), {}, {}, {});
}

Result<S3Response> S3Client::request(const char* method, const std::string& url, std::span<const std::uint8_t> body,
                                     std::string_view content_type, std::string_view content_md5) {
  CURL* curl = static_cast<CURL*>(curl_);
  curl_easy_reset(curl);  // keeps the open connection
  body_.clear();
  etag_.clear();
  error_buffer_[0] = '\0';
  const bool put = method[0] == 'P';
  // The payload's SHA-256 goes in the signed x-amz-content-sha256 header; the body is given to
  // libcurl as POSTFIELDS (sent as a PUT), so every libcurl version signs the same hash.
  std::string headers_text[5];
  headers_text[0] = "x-amz-content-sha256: " + sha256_hex(body);
  int n = 1;
  if (put) {
    headers_text[n++] = "Content-Type: " + std::string(content_type.empty() ? "application/octet-stream" : content_type);
    headers_text[n++] = "Content-MD5: " + std::string(content_md5);
    headers_text[n++] = "Expect:";  // no 100-continue round trip
  }
  if (!config_.session_token.empty()) headers_text[n++] = "x-amz-security-token: " + config_.session_token;
  curl_slist* headers = nullptr;
  for (int i = 0; i < n; ++i) {
    curl_slist* next = curl_slist_append(headers, headers_text[i].c_str());
    if (!next) {
      curl_slist_free_all(headers);
      return Error{ErrorCode::internal, "libcurl: out of memory"};
    }
    headers = next;
  }
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer_);
  curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4_.c_str());
  curl_easy_setopt(curl, CURLOPT_USERNAME, config_.access_key.c_str());
  curl_easy_setopt(curl, CURLOPT_PASSWORD, config_.secret_key.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, config_.connect_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, config_.stall_timeout_s);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body_);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &etag_);
  if (put) {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.empty() ? "" : reinterpret_cast<const char*>(body.data()));
  } else {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  }
  const CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (code != CURLE_OK) {
    const std::string detail = error_buffer_[0] ? error_buffer_ : curl_easy_strerror(code);
    // Retrying cannot mend a malformed URL or a refused certificate.
    const bool lasting = code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL ||
                         code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE;
    return Error{lasting ? ErrorCode::invalid_argument : ErrorCode::unavailable, detail};
  }
  S3Response r;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  r.etag = etag_;
  if (r.status >= 300) r.error = s3_error_text(body_);
  return r;
}

}  // namespace vigil
