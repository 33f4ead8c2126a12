#include "vigil/harvest/upload.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <thread>

namespace vigil {

namespace {

bool retryable(const Result<S3Response>& r) {
  if (!r.ok()) return r.error().code == ErrorCode::unavailable;
  return r->status == 408 || r->status == 429 || r->status >= 500;
}

bool is_md5(const std::string& etag) {
  return etag.size() == 32 && std::all_of(etag.begin(), etag.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Result<std::vector<std::uint8_t>> read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{ErrorCode::unavailable, path + ": cannot be read"};
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Error{ErrorCode::unavailable, path + ": read failed"};
  return bytes;
}

// What stops the workers early (the first failure), and their backoff sleeps with it.
class Stop {
 public:
  void set() {
    {
      std::lock_guard lock(m_);
      stopped_ = true;
    }
    cv_.notify_all();
  }
  bool stopped() {
    std::lock_guard lock(m_);
    return stopped_;
  }
  // Sleeps for `d` unless stopped first; false when stopped.
  bool sleep(std::chrono::milliseconds d) {
    std::unique_lock lock(m_);
    return !cv_.wait_for(lock, d, [&] { return stopped_; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

// Runs `request` until it succeeds, fails for good, runs out of attempts or is stopped.
template <class Request>
Result<S3Response> with_retries(const UploadTarget& target, Stop& stop, std::mt19937& random, std::atomic<std::uint64_t>& retries,
                                Request&& request) {
  std::chrono::milliseconds delay = target.backoff;
  for (int attempt = 1;; ++attempt) {
    Result<S3Response> r = request();
    if (!retryable(r) || attempt >= std::max(1, target.attempts)) {
      if (!r.ok() && attempt > 1) return Error{r.error().code, r.error().message + " (" + std::to_string(attempt) + " attempts)"};
      if (r.ok() && retryable(r) && attempt > 1) r->error += " (" + std::to_string(attempt) + " attempts)";
      return r;
    }
    // Full jitter around the delay: workers that failed together do not retry together.
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    const auto wait = std::chrono::milliseconds(static_cast<long>(static_cast<double>(delay.count()) * jitter(random)));
    if (!stop.sleep(wait)) return r;
    ++retries;
    delay = std::min(delay * 2, std::chrono::milliseconds(8000));
  }
}

Error refused(const std::string& what, const S3Response& r) {
  const ErrorCode code = r.status == 404 ? ErrorCode::not_found : r.status >= 500 || r.status == 429 || r.status == 408
                                                                      ? ErrorCode::unavailable
                                                                      : ErrorCode::failed_precondition;
  return Error{code, what + ": the storage answered " + std::to_string(r.status) + (r.error.empty() ? "" : " " + r.error)};
}

}  // namespace

Uploader::Uploader(UploadTarget target, UploadLedger ledger, UploadRecordFn record)
    : target_(std::move(target)), ledger_(std::move(ledger)), record_(std::move(record)) {}

std::string Uploader::url(const std::string& name) const {
  return s3_object_url(target_.s3, target_.location.bucket, target_.location.prefix + name);
}

std::string Uploader::destination() const { return "s3://" + target_.location.bucket + "/" + target_.location.prefix; }

Status Uploader::check_bucket() {
  auto client = S3Client::create(target_.s3);
  if (!client.ok()) return client.error();
  Stop stop;
  std::mt19937 random(std::random_device{}());
  std::atomic<std::uint64_t> retries{0};
  const std::string where = target_.s3.endpoint.empty() ? std::string("AWS S3") : target_.s3.endpoint;
  auto r = with_retries(target_, stop, random, retries, [&] { return (*client)->head_bucket(target_.location.bucket); });
  stats_.retries += retries;
  if (!r.ok()) return Error{r.error().code, "upload: cannot reach " + where + ": " + r.error().message};
  if (r->status == 404) return Error{ErrorCode::not_found, "upload: there is no bucket \"" + target_.location.bucket + "\" at " + where};
  if (r->status == 403 || r->status == 401) {
    return Error{ErrorCode::failed_precondition, "upload: " + where + " refused access to bucket \"" + target_.location.bucket +
                                                     "\" (" + std::to_string(r->status) +
                                                     "): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the key's permissions"};
  }
  if (r->status >= 300) return refused("upload: bucket \"" + target_.location.bucket + "\" at " + where, *r);
  return {};
}

Status Uploader::upload(const std::vector<UploadFile>& files, const std::function<void(const UploadStats&)>& progress) {
  stats_.files += files.size();
  const int workers = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(std::max(1, target_.concurrency)), files.size()));
  if (workers == 0) return {};
  Stop stop;
  std::mutex m;  // guards the stats, the first error, record_ calls and `finished`
  std::condition_variable finished_cv;
  int finished = 0, in_flight = 0;
  Status first_error;
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> retries{0};
  const auto fail = [&](Error e) {
    {
      std::lock_guard lock(m);
      if (first_error.ok()) first_error = std::move(e);
    }
    stop.set();
  };
  const auto record = [&](bool uploaded, const std::string& url, const std::string& md5) {
    std::lock_guard lock(m);
    return record_ ? record_(uploaded, url, md5) : Status{};
  };
  const auto work = [&] {
    std::mt19937 random(std::random_device{}());
    auto client = S3Client::create(target_.s3);
    if (!client.ok()) return fail(client.error());
    while (!stop.stopped()) {
      const std::size_t i = next.fetch_add(1);
      if (i >= files.size()) return;
      const UploadFile& f = files[i];
      if (admit_ && !admit_()) return fail(Error{ErrorCode::cancelled, "upload: stopped"});
      const std::string key = target_.location.prefix + f.name;
      const std::string what = "upload of " + f.name + " to s3://" + target_.location.bucket + "/" + key;
      auto bytes = read_whole(f.path);
      if (!bytes.ok()) return fail(with_context(bytes.error(), "upload"));
      const std::string md5 = md5_hex(*bytes);
      const std::string object = url(f.name);
      if (const auto it = ledger_.uploaded.find(object); it != ledger_.uploaded.end() && it->second == md5) {
        std::lock_guard lock(m);
        ++stats_.recorded;
        continue;
      }
      if (const auto it = ledger_.started.find(object); it != ledger_.started.end() && it->second == md5) {
        // Sent by a run that died before it heard back: the storage may have it already.
        auto head = with_retries(target_, stop, random, retries, [&] { return (*client)->head_object(target_.location.bucket, key); });
        if (head.ok() && head->status == 200 && head->etag == md5) {
          if (Status s = record(true, object, md5); !s.ok()) return fail(s.error());
          std::lock_guard lock(m);
          ++stats_.found;
          continue;
        }
      }
      if (Status s = record(false, object, md5); !s.ok()) return fail(s.error());
      auto put = with_retries(target_, stop, random, retries, [&] {
        {
          std::lock_guard lock(m);
          stats_.max_in_flight = std::max(stats_.max_in_flight, ++in_flight);
        }
        auto r = (*client)->put_object(target_.location.bucket, key, *bytes, f.content_type);
        std::lock_guard lock(m);
        --in_flight;
        return r;
      });
      if (!put.ok()) {
        const std::string where = target_.s3.endpoint.empty() ? std::string("AWS S3") : target_.s3.endpoint;
        return fail(Error{put.error().code, what + ": cannot reach " + where + ": " + put.error().message});
      }
      if (put->status != 200) return fail(refused(what, *put));
      if (is_md5(put->etag) && put->etag != md5) {
        return fail(Error{ErrorCode::data_loss, what + ": the storage holds other bytes (ETag " + put->etag + ", MD5 " + md5 + ")"});
      }
      if (Status s = record(true, object, md5); !s.ok()) return fail(s.error());
      std::lock_guard lock(m);
      ++stats_.uploaded;
      stats_.bytes += bytes->size();
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(workers));
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      try {
        work();
      } catch (const std::exception& e) {  // out of memory: this upload fails, not the process
        fail(Error{ErrorCode::internal, std::string("upload: ") + e.what()});
      }
      std::lock_guard lock(m);
      ++finished;
      finished_cv.notify_all();
    });
  }
  for (;;) {
    UploadStats snapshot;
    {
      std::unique_lock lock(m);
      if (finished_cv.wait_for(lock, std::chrono::seconds(1), [&] { return finished == workers; })) break;
      snapshot = stats_;
    }
    if (progress) progress(snapshot);
  }
  for (std::thread& t : threads) t.join();
  stats_.retries += retries;
  if (progress) progress(stats_);
  return first_error;
}

}  // namespace vigil
