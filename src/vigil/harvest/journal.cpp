#include "vigil/harvest/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

namespace vigil {

namespace {

std::uint32_t crc_of(std::string_view bytes) {
  return static_cast<std::uint32_t>(crc32_z(0L, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

void put_u32(char* at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint32_t get_u32(const char* at) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(at[i])) << (8 * i);
  return v;
}

Error io_error(const std::string& what, const std::string& path) {
  return Error{ErrorCode::unavailable, "journal " + path + ": " + what + ": " + std::strerror(errno)};
}

}  // namespace

Result<std::unique_ptr<Journal>> Journal::open(const std::string& path, std::vector<std::string>& records) {
  std::unique_ptr<Journal> j(new Journal());
  j->path_ = path;
  j->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (j->fd_ < 0) return io_error("cannot open", path);
  struct stat st {};
  if (::fstat(j->fd_, &st) != 0) return io_error("cannot stat", path);
  std::string data(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::pread(j->fd_, data.data() + got, data.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot read", path);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  data.resize(got);
  std::size_t at = 0;
  while (data.size() - at >= 8) {
    const std::uint32_t length = get_u32(data.data() + at);
    const std::uint32_t crc = get_u32(data.data() + at + 4);
    if (length > kMaxRecord || data.size() - at - 8 < length) break;
    const std::string_view payload(data.data() + at + 8, length);
    if (crc_of(payload) != crc) break;
    records.emplace_back(payload);
    at += 8 + length;
  }
  j->torn_bytes_ = data.size() - at;
  {
    MutexLock lock(j->mu_);  // no other thread knows it yet; the analysis cannot tell
    j->size_ = at;
  }
  if (j->torn_bytes_ > 0 && ::ftruncate(j->fd_, static_cast<off_t>(at)) != 0) return io_error("cannot cut a torn record", path);
  return j;
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

Status Journal::append(std::string_view record) {
  if (record.size() > kMaxRecord) return Error{ErrorCode::invalid_argument, "journal " + path_ + ": record over 64 MiB"};
  MutexLock lock(mu_);
  buffer_.resize(8 + record.size());
  put_u32(buffer_.data(), static_cast<std::uint32_t>(record.size()));
  put_u32(buffer_.data() + 4, crc_of(record));
  std::memcpy(buffer_.data() + 8, record.data(), record.size());
  std::size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::pwrite(fd_, buffer_.data() + done, buffer_.size() - done, static_cast<off_t>(size_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const Error error = io_error("cannot write", path_);
      // No half record stays (should this cut fail too, the next open() makes it).
      const int cut = ::ftruncate(fd_, static_cast<off_t>(size_));
      static_cast<void>(cut);
      return error;
    }
    done += static_cast<std::size_t>(n);
  }
  size_ += buffer_.size();
  return {};
}

Status Journal::sync() {
  if (::fdatasync(fd_) != 0) return io_error("cannot sync", path_);
  return {};
}

}  // namespace vigil
