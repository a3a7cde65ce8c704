// Directories pyhot stages files and finds sockets in, verified before every
// use: owned by the expected user, mode 0700, not a symbolic link, and then
// used only through the verified descriptor (openat, /proc/self/fd/N/...),
// so no other user can plant a file, a socket or a link where pyhot looks.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "util/result.hpp"

namespace pyhot::loader {

class VerifiedDirectory {
 public:
  // Opens `path` without following a link and checks owner and mode. With
  // `create`, makes it (0700, handed to `owner` when pyhot runs as root).
  // With `create`, a directory of `owner` that nobody else can write (0755)
  // is tightened to 0700; anything else is refused with one line naming the path and
  // what is wrong. not_found when it does not exist and `create` is false.
  static Result<VerifiedDirectory> open(const std::string& path, uid_t owner, bool create);

  VerifiedDirectory(VerifiedDirectory&& other) noexcept;
  VerifiedDirectory& operator=(VerifiedDirectory&& other) noexcept;
  VerifiedDirectory(const VerifiedDirectory&) = delete;
  VerifiedDirectory& operator=(const VerifiedDirectory&) = delete;
  ~VerifiedDirectory();

  const std::string& path() const { return m_path; }
  // A path to `name` inside exactly this directory (for connect and open by
  // path): /proc/self/fd/N/name.
  std::string descriptor_path(const std::string& name) const;

  // Leaves `name` holding exactly `contents` (mode, owned by the directory's
  // owner): kept when it already does, else written beside and renamed over.
  Result<Done> place_file(const std::string& name, std::string_view contents, mode_t mode) const;
  // A regular file of the owner, writable by nobody else, holding exactly `expected`.
  Result<Done> verify_file(const std::string& name, std::string_view expected) const;
  // not_found when absent; refused unless it is a socket of the owner.
  Result<Done> verify_socket(const std::string& name) const;
  // Removes `name`: true when this call removed it, false when it was gone
  // already (someone else took it first; unlink decides between the two).
  Result<bool> take_file(const std::string& name) const;
  // Removes the regular files whose names start with `prefix` and that
  // were last changed more than `age_seconds` ago (what a killed pyhot left).
  void remove_stale(const std::string& prefix, long age_seconds) const;

 private:
  VerifiedDirectory(int fd, std::string path, uid_t owner) : m_fd(fd), m_path(std::move(path)), m_owner(owner) {}

  int m_fd = -1;
  std::string m_path;
  uid_t m_owner = 0;
};

}  // namespace pyhot::loader
