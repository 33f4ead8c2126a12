// Uploader: sends a harvest's files to S3-compatible storage (sink/s3_client.h), at most
// `concurrency` transfers at once, each retried with exponential backoff while the failure is
// one that can pass (no connection, a timeout, a 5xx or 429 answer), and never sends the
// same bytes to the same object twice.
//
// What was sent is the caller's to remember (the harvest keeps it in its journal): before a
// PUT the uploader records that the object was started, after the storage has it (its ETag
// equals the bytes' MD5) that it was uploaded. Given those records back, a resumed run skips
// every uploaded object, and asks the storage (HEAD) about each object that was started but
// not recorded as uploaded (the process died between the storage's answer and the record),
// sending it only when the storage does not have those bytes.
//
// Threading: upload() runs `concurrency` worker threads (each with its own S3Client) and
// returns when they have stopped; `record` is called on them, one call at a time, and the
// pacing hook before each file is read and hashed (the harvest's CpuGovernor::admit, so the
// CPU budget holds through the upload too); `progress` is called on the caller's thread,
// about once a second.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "vigil/core/status.h"
#include "vigil/sink/s3_client.h"

namespace vigil {

struct UploadTarget {
  S3Config s3;
  S3Location location;  // the bucket and the prefix of every key
  int concurrency = 2;  // transfers at once
  int attempts = 5;     // tries per request, the first included
  std::chrono::milliseconds backoff{250};  // before the second try; doubled for each next (with jitter), at most 8 s
};

struct UploadFile {
  std::string path;          // on disk
  std::string name;          // the key under the prefix ("crops/12.png")
  std::string content_type;  // "" for application/octet-stream
};

// What earlier runs recorded, by object URL: the MD5 of the bytes uploaded, or started.
struct UploadLedger {
  std::map<std::string, std::string> uploaded;
  std::map<std::string, std::string> started;
};

struct UploadStats {
  std::uint64_t files = 0;     // given
  std::uint64_t uploaded = 0;  // sent by this run
  std::uint64_t recorded = 0;  // skipped: an earlier run uploaded the same bytes
  std::uint64_t found = 0;     // skipped: started earlier, and the storage has the same bytes
  std::uint64_t bytes = 0;     // sent by this run
  std::uint64_t retries = 0;   // requests tried again
  int max_in_flight = 0;       // the most transfers at once
};

// Called with (uploaded: false = started, true = uploaded, object URL, MD5 hex); an error
// stops the upload.
using UploadRecordFn = std::function<Status(bool uploaded, const std::string& url, const std::string& md5)>;

class Uploader {
 public:
  Uploader(UploadTarget target, UploadLedger ledger, UploadRecordFn record);
  // Called by a worker before each file; false stops the upload (cancelled).
  void set_pacing(std::function<bool()> admit) { admit_ = std::move(admit); }

  // Whether the bucket answers, before hours of work that would have nowhere to go: HEAD on
  // the bucket, retried like a transfer. Errors: unavailable (cannot reach the endpoint),
  // not_found (no such bucket), failed_precondition (refused: keys, permissions).
  Status check_bucket();

  // Uploads `files` (each read whole when its turn comes). Errors: the first failure (a file
  // that cannot be read, a request refused or still failing after every attempt), naming
  // the object; the other workers stop after their transfer in flight.
  Status upload(const std::vector<UploadFile>& files, const std::function<void(const UploadStats&)>& progress = {});

  const UploadStats& stats() const { return stats_; }
  std::string url(const std::string& name) const;  // the object URL of a file's name
  // "s3://BUCKET/PREFIX"
  std::string destination() const;

 private:
  class Run;  // one call of upload() (upload.cpp)
  UploadTarget target_;
  UploadLedger ledger_;
  UploadRecordFn record_;
  std::function<bool()> admit_;
  UploadStats stats_;
};

}  // namespace vigil
