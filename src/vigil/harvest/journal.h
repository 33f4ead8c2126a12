// Journal: an append-only file of records, how `vigil harvest` remembers what it has done so
// that a killed run continues where it was.
//
// Each record is [u32 length][u32 CRC-32 of the payload][payload], little-endian, written
// with one write(2). A process killed at any moment (even SIGKILL) leaves whole records and
// at most one torn one at the end: open() reads back the whole ones and cuts the file after
// the last of them, so appending continues cleanly. sync() makes what was appended survive a
// power cut too (fdatasync).
//
// Threading: append() from any thread (records go one after another); open, sync and the
// destructor from one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/core/mutex.h"
#include "vigil/core/status.h"

namespace vigil {

class Journal {
 public:
  static constexpr std::uint32_t kMaxRecord = 64u << 20;

  // Opens (creating) the journal at `path` and appends its whole records to `records`.
  // Errors: unavailable when the file cannot be opened, read or cut.
  static Result<std::unique_ptr<Journal>> open(const std::string& path, std::vector<std::string>& records);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Errors: invalid_argument for a record over kMaxRecord, unavailable when the write fails
  // (the file is cut back to its last whole record).
  Status append(std::string_view record) EXCLUDES(mu_);
  Status sync();
  // Bytes cut from the end when it was opened (a torn record), for the log.
  std::uint64_t torn_bytes() const { return torn_bytes_; }
  std::uint64_t size() const EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return size_;
  }

 private:
  Journal() = default;
  int fd_ = -1;
  std::string path_;
  mutable Mutex mu_;
  std::uint64_t size_ GUARDED_BY(mu_) = 0;
  std::uint64_t torn_bytes_ = 0;
  std::string buffer_ GUARDED_BY(mu_);  // header + payload, reused
};

}  // namespace vigil
