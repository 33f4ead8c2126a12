#include "vigil/harvest/upload.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include "vigil/core/mutex.h"

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
  void set() EXCLUDES(m_) {
    {
      MutexLock lock(m_);
      stopped_ = true;
    }
    cv_.notify_all();
  }
  bool stopped() EXCLUDES(m_) {
    MutexLock lock(m_);
    return stopped_;
  }
  // Sleeps for `d` unless stopped first; false when stopped.
  bool sleep(std::chrono::milliseconds d) EXCLUDES(m_) {
    const auto until = std::chrono::steady_clock::now() + d;
    MutexLock lock(m_);
    while (!stopped_) {
      if (!cv_.wait_until(m_, until)) break;
    }
    return !stopped_;
  }

 private:
  Mutex m_;
  CondVar cv_;
  bool stopped_ GUARDED_BY(m_) = false;
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

// One call of upload(): its files shared by `workers` threads, each with its own S3Client,
// taking the next file until none is left or the first failure stops them all.
class Uploader::Run {
 public:
  Run(Uploader& uploader, const std::vector<UploadFile>& files) : u_(uploader), files_(files) {}

  Status run(int workers, const std::function<void(const UploadStats&)>& progress) EXCLUDES(m_) {
    std::vector<std::thread> threads;
    threads.reserve(static_cast<std::size_t>(workers));
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([this] {
        try {
          work();
        } catch (const std::exception& e) {  // out of memory: this upload fails, not the process
          fail(Error{ErrorCode::internal, std::string("upload: ") + e.what()});
        }
        MutexLock lock(m_);
        ++finished_;
        finished_cv_.notify_all();
      });
    }
    for (;;) {
      UploadStats snapshot;
      {
        MutexLock lock(m_);
        if (finished_ == workers) break;
        finished_cv_.wait_for(m_, std::chrono::seconds(1));
        if (finished_ == workers) break;
        snapshot = u_.stats_;
      }
      if (progress) progress(snapshot);
    }
    for (std::thread& t : threads) t.join();
    u_.stats_.retries += retries_;
    if (progress) progress(u_.stats_);
    MutexLock lock(m_);
    return first_error_;
  }

 private:
  void fail(Error e) EXCLUDES(m_) {
    {
      MutexLock lock(m_);
      if (first_error_.ok()) first_error_ = std::move(e);
    }
    stop_.set();
  }

  Status record(bool uploaded, const std::string& url, const std::string& md5) EXCLUDES(m_) {
    MutexLock lock(m_);
    return u_.record_ ? u_.record_(uploaded, url, md5) : Status{};
  }

  void count(std::uint64_t UploadStats::*field, std::uint64_t bytes = 0) EXCLUDES(m_) {
    MutexLock lock(m_);
    ++(u_.stats_.*field);
    u_.stats_.bytes += bytes;
  }

  void work() {
    std::mt19937 random(std::random_device{}());
    auto client = S3Client::create(u_.target_.s3);
    if (!client.ok()) return fail(client.error());
    while (!stop_.stopped()) {
      const std::size_t i = next_.fetch_add(1);
      if (i >= files_.size()) return;
      if (u_.admit_ && !u_.admit_()) return fail(Error{ErrorCode::cancelled, "upload: stopped"});
      if (Status s = send(**client, random, files_[i]); !s.ok()) return fail(s.error());
    }
  }

  // One file: skipped when an earlier run uploaded (or started, and the storage has) the same
  // bytes; else recorded as started, put, checked against its MD5, recorded as uploaded.
  Status send(S3Client& client, std::mt19937& random, const UploadFile& f) {
    const UploadTarget& target = u_.target_;
    const std::string key = target.location.prefix + f.name;
    const std::string what = "upload of " + f.name + " to s3://" + target.location.bucket + "/" + key;
    auto bytes = read_whole(f.path);
    if (!bytes.ok()) return with_context(bytes.error(), "upload");
    const std::string md5 = md5_hex(*bytes);
    const std::string object = u_.url(f.name);
    if (const auto it = u_.ledger_.uploaded.find(object); it != u_.ledger_.uploaded.end() && it->second == md5) {
      count(&UploadStats::recorded);
      return {};
    }
    if (const auto it = u_.ledger_.started.find(object); it != u_.ledger_.started.end() && it->second == md5) {
      // Sent by a run that died before it heard back: the storage may have it already.
      auto head = with_retries(target, stop_, random, retries_, [&] { return client.head_object(target.location.bucket, key); });
      if (head.ok() && head->status == 200 && head->etag == md5) {
        VIGIL_RETURN_IF_ERROR(record(true, object, md5));
        count(&UploadStats::found);
        return {};
      }
    }
    VIGIL_RETURN_IF_ERROR(record(false, object, md5));
    auto put = with_retries(target, stop_, random, retries_, [&] {
      {
        MutexLock lock(m_);
        u_.stats_.max_in_flight = std::max(u_.stats_.max_in_flight, ++in_flight_);
      }
      auto r = client.put_object(target.location.bucket, key, *bytes, f.content_type);
      MutexLock lock(m_);
      --in_flight_;
      return r;
    });
    if (!put.ok()) {
      const std::string where = target.s3.endpoint.empty() ? std::string("AWS S3") : target.s3.endpoint;
      return Error{put.error().code, what + ": cannot reach " + where + ": " + put.error().message};
    }
    if (put->status != 200) return refused(what, *put);
    if (is_md5(put->etag) && put->etag != md5) {
      return Error{ErrorCode::data_loss, what + ": the storage holds other bytes (ETag " + put->etag + ", MD5 " + md5 + ")"};
    }
    VIGIL_RETURN_IF_ERROR(record(true, object, md5));
    count(&UploadStats::uploaded, bytes->size());
    return {};
  }

  Uploader& u_;
  const std::vector<UploadFile>& files_;
  Stop stop_;
  std::atomic<std::size_t> next_{0};
  std::atomic<std::uint64_t> retries_{0};
  Mutex m_;  // also serialises the record function's calls and guards the uploader's stats
  CondVar finished_cv_;
  int finished_ GUARDED_BY(m_) = 0;
  int in_flight_ GUARDED_BY(m_) = 0;
  Status first_error_ GUARDED_BY(m_);
};

Status Uploader::upload(const std::vector<UploadFile>& files, const std::function<void(const UploadStats&)>& progress) {
  stats_.files += files.size();
  const int workers = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(std::max(1, target_.concurrency)), files.size()));
  if (workers == 0) return {};
  Run run(*this, files);
  return run.run(workers, progress);
}

}  // namespace vigil
