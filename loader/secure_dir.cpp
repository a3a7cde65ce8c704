#include "loader/secure_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>

namespace pyhot::loader {

namespace {

Error refusal(const std::string& path, const std::string& what) {
  return make_error(ErrorKind::refused, "refusing " + path + ": " + what);
}

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// What is wrong with an entry that should belong to `owner`, "" when nothing.
std::string ownership_problem(const struct stat& st, uid_t owner) {
  if (st.st_uid != owner) {
    return "it belongs to uid " + std::to_string(st.st_uid) + ", not to uid " + std::to_string(owner);
  }
  return {};
}

Result<int> open_directory(const std::string& path, bool create, uid_t owner) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      return fd;
    }
    int err = errno;
    if (err == ELOOP || err == ENOTDIR) {
      // O_NOFOLLOW with O_DIRECTORY says ENOTDIR for a link: tell them apart.
      struct stat st {};
      bool link = ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
      return refusal(path, link ? "it is a symbolic link" : "it is not a directory");
    }
    if (err == EACCES) {
      // Not even readable to us: say whose it is when that is the reason.
      struct stat st {};
      if (::lstat(path.c_str(), &st) == 0 && st.st_uid != owner) {
        return refusal(path, ownership_problem(st, owner));
      }
    }
    if (err != ENOENT) {
      return make_error(err == EACCES ? ErrorKind::permission_denied : ErrorKind::io,
                        "cannot open " + path + ": " + std::strerror(err));
    }
    if (!create) {
      return make_error(ErrorKind::not_found, path + " does not exist");
    }
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      return make_error(ErrorKind::io, "cannot create " + path + ": " + std::strerror(errno));
    }
    // Made by us (or lost a race to someone else's mkdir): open and check it
    // either way; a directory root made is handed to its user through the descriptor.
    fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      struct stat st {};
      if (geteuid() == 0 && owner != 0 && fstat(fd, &st) == 0 && st.st_uid == 0 && (st.st_mode & 07777) == 0700) {
        if (fchown(fd, owner, static_cast<gid_t>(-1)) != 0) {
          int saved = errno;
          ::close(fd);
          return make_error(ErrorKind::io,
                            "cannot hand " + path + " to uid " + std::to_string(owner) + ": " + std::strerror(saved));
        }
      }
      return fd;
    }
  }
  return make_error(ErrorKind::io, "cannot open " + path + ": " + std::strerror(errno));
}

}  // namespace

Result<VerifiedDirectory> VerifiedDirectory::open(const std::string& path, uid_t owner, bool create) {
  auto fd = open_directory(path, create, owner);
  if (!fd) {
    return fd.error();
  }
  VerifiedDirectory directory(*fd, path, owner);
  struct stat st {};
  if (fstat(*fd, &st) != 0) {
    return make_error(ErrorKind::io, "cannot inspect " + path + ": " + std::strerror(errno));
  }
  if (std::string problem = ownership_problem(st, owner); !problem.empty()) {
    return refusal(path, problem);
  }
  mode_t mode = st.st_mode & 07777;
  if (mode != 0700) {
    // Writable by another user: something may already have been planted.
    if ((mode & 022) != 0 || (mode & 07000) != 0 || !create) {
      return refusal(path, "its mode is " + octal_mode(mode) + ", not 0700");
    }
    if (fchmod(*fd, 0700) != 0) {
      return refusal(path, "its mode is " + octal_mode(mode) + ", not 0700, and cannot be changed");
    }
  }
  return directory;
}

VerifiedDirectory::VerifiedDirectory(VerifiedDirectory&& other) noexcept
    : m_fd(std::exchange(other.m_fd, -1)), m_path(std::move(other.m_path)), m_owner(other.m_owner) {}

VerifiedDirectory& VerifiedDirectory::operator=(VerifiedDirectory&& other) noexcept {
  if (this != &other) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = std::exchange(other.m_fd, -1);
    m_path = std::move(other.m_path);
    m_owner = other.m_owner;
  }
  return *this;
}

VerifiedDirectory::~VerifiedDirectory() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

std::string VerifiedDirectory::descriptor_path(const std::string& name) const {
  return "/proc/self/fd/" + std::to_string(m_fd) + "/" + name;
}

Result<Done> VerifiedDirectory::verify_file(const std::string& name, std::string_view expected) const {
  std::string shown = m_path + "/" + name;
  int fd = ::openat(m_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    if (err == ELOOP) {
      return refusal(shown, "it is a symbolic link");
    }
    return make_error(err == ENOENT ? ErrorKind::not_found : ErrorKind::io,
                      "cannot open " + shown + ": " + std::strerror(err));
  }
  struct stat st {};
  std::string problem;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    problem = "it is not a regular file";
  } else if (problem = ownership_problem(st, m_owner); problem.empty() && (st.st_mode & 022) != 0) {
    problem = "its mode is " + octal_mode(st.st_mode) + ": others can write it";
  }
  std::string contents;
  if (problem.empty()) {
    contents.resize(static_cast<size_t>(st.st_size) + 1);
    ssize_t got = ::pread(fd, contents.data(), contents.size(), 0);
    contents.resize(got < 0 ? 0 : static_cast<size_t>(got));
    if (contents != expected) {
      problem = "its contents are not the ones pyhot wrote";
    }
  }
  ::close(fd);
  if (!problem.empty()) {
    return refusal(shown, problem);
  }
  return k_done;
}

Result<Done> VerifiedDirectory::place_file(const std::string& name, std::string_view contents, mode_t mode) const {
  if (verify_file(name, contents)) {
    return k_done;
  }
  std::string temporary = "." + name + ".tmp" + std::to_string(getpid());
  std::string shown = m_path + "/" + name;
  ::unlinkat(m_fd, temporary.c_str(), 0);
  int fd = ::openat(m_fd, temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return make_error(ErrorKind::io, "cannot write " + shown + ": " + std::strerror(errno));
  }
  bool written = ::write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size());
  if (written && geteuid() == 0 && m_owner != 0) {
    written = fchown(fd, m_owner, static_cast<gid_t>(-1)) == 0;
  }
  written = written && fchmod(fd, mode) == 0;
  ::close(fd);
  if (!written || ::renameat(m_fd, temporary.c_str(), m_fd, name.c_str()) != 0) {
    int saved = errno;
    ::unlinkat(m_fd, temporary.c_str(), 0);
    return make_error(ErrorKind::io, "cannot write " + shown + ": " + std::strerror(saved));
  }
  return verify_file(name, contents);
}

Result<bool> VerifiedDirectory::take_file(const std::string& name) const {
  if (::unlinkat(m_fd, name.c_str(), 0) == 0) {
    return true;
  }
  if (errno == ENOENT) {
    return false;
  }
  return make_error(ErrorKind::io, "cannot remove " + m_path + "/" + name + ": " + std::strerror(errno));
}

void VerifiedDirectory::remove_stale(const std::string& prefix, long age_seconds) const {
  int fd = ::dup(m_fd);
  DIR* listing = fd < 0 ? nullptr : ::fdopendir(fd);
  if (listing == nullptr) {
    if (fd >= 0) {
      ::close(fd);
    }
    return;
  }
  ::rewinddir(listing);
  time_t now = ::time(nullptr);
  while (dirent* entry = ::readdir(listing)) {
    std::string_view name = entry->d_name;
    struct stat st {};
    if (name.substr(0, prefix.size()) == prefix && ::fstatat(m_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode) && now - st.st_mtime > age_seconds) {
      ::unlinkat(m_fd, entry->d_name, 0);
    }
  }
  ::closedir(listing);
}

Result<Done> VerifiedDirectory::verify_socket(const std::string& name) const {
  std::string shown = m_path + "/" + name;
  struct stat st {};
  if (::fstatat(m_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    int err = errno;
    return make_error(err == ENOENT ? ErrorKind::not_found : ErrorKind::io,
                      "cannot inspect " + shown + ": " + std::strerror(err));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return refusal(shown, S_ISLNK(st.st_mode) ? "it is a symbolic link" : "it is not a socket");
  }
  if (std::string problem = ownership_problem(st, m_owner); !problem.empty()) {
    return refusal(shown, problem);
  }
  return k_done;
}

}  // namespace pyhot::loader
