#include "vigil/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace vigil {

namespace {

constexpr std::string_view kMarker = ".vigil-tmp-";

Error io_error(const std::string& what, const std::string& path, int err) {
  return Error{ErrorCode::unavailable, what + " " + path + ": " + std::strerror(err)};
}

}  // namespace

Status write_file_atomically(const std::string& path, std::string_view bytes) {
  static std::atomic<unsigned> counter{0};
  const std::filesystem::path final_path(path);
  const std::string folder = final_path.has_parent_path() ? final_path.parent_path().string() : ".";
  const std::string temporary = folder + "/" + std::string(kMarker) + std::to_string(::getpid()) + "-" +
                                std::to_string(counter.fetch_add(1)) + "-" + final_path.filename().string();
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot create", path, errno);
  std::size_t done = 0;
  int err = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && ::rename(temporary.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(temporary.c_str());
    return io_error("cannot write", path, err);
  }
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);  // the rename itself survives a power cut
    ::close(dir);
  }
  return {};
}

void remove_stale_temporaries(const std::string& folder) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    if (entry.path().filename().string().rfind(kMarker, 0) == 0) std::filesystem::remove(entry.path(), ec);
  }
}

}  // namespace vigil
