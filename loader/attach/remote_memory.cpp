#include "loader/attach/remote_memory.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pyhot::loader::attach {

namespace {

std::string pid_text(int pid) { return "process " + std::to_string(pid); }

}  // namespace

Result<std::string> read_remote(int pid, uint64_t address, size_t size) {
  std::string bytes(size, '\0');
  iovec local{bytes.data(), size};
  iovec remote{reinterpret_cast<void*>(address), size};  // NOLINT(performance-no-int-to-ptr)
  ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (got != static_cast<ssize_t>(size)) {
    return make_error(ErrorKind::io, "reading " + std::to_string(size) + " bytes of " + pid_text(pid) + ": " +
                                         std::strerror(got < 0 ? errno : EIO));
  }
  return bytes;
}

Result<uint64_t> read_remote_u64(int pid, uint64_t address) {
  auto bytes = read_remote(pid, address, 8);
  if (!bytes) {
    return bytes.error();
  }
  uint64_t value = 0;
  std::memcpy(&value, bytes->data(), 8);
  return value;
}

Result<Done> write_remote(int pid, uint64_t address, const std::string& bytes) {
  iovec local{const_cast<char*>(bytes.data()), bytes.size()};
  iovec remote{reinterpret_cast<void*>(address), bytes.size()};  // NOLINT(performance-no-int-to-ptr)
  if (process_vm_writev(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(bytes.size())) {
    return make_error(ErrorKind::io, "writing to " + pid_text(pid) + ": " + std::strerror(errno));
  }
  return k_done;
}

Result<Done> write_remote_forced(int pid, uint64_t address, const std::string& bytes) {
  std::string path = "/proc/" + std::to_string(pid) + "/mem";
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorKind::io, "opening " + path + ": " + std::strerror(errno));
  }
  ssize_t wrote = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(address));
  int saved = errno;
  ::close(fd);
  if (wrote != static_cast<ssize_t>(bytes.size())) {
    return make_error(ErrorKind::io, "writing to " + pid_text(pid) + ": " + std::strerror(wrote < 0 ? saved : EIO));
  }
  return k_done;
}

}  // namespace pyhot::loader::attach
