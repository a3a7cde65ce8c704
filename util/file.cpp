#include "util/file.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pyhot::util {

Result<std::string> read_file(const std::string& path) {
  std::error_code ignored;
  // An ifstream opens a directory and reads nothing: an empty "file".
  if (std::filesystem::is_directory(path, ignored)) {
    return make_error(ErrorKind::usage, "cannot read '" + path + "': it is a directory, not a Python file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int saved = errno;
    auto kind = saved == EACCES ? ErrorKind::permission_denied : ErrorKind::not_found;
    return make_error(kind, "cannot read '" + path + "': " + std::strerror(saved));
  }
  // Read into a string of the file's size: a stream copied into a growing
  // buffer touched three times the file's bytes in fresh memory, a page
  // fault per 4 KiB (a megabytes-long module).
  std::string contents;
  in.seekg(0, std::ios::end);
  auto size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size > 0) {
    contents.resize(static_cast<std::size_t>(size));
    in.read(contents.data(), static_cast<std::streamsize>(contents.size()));
    contents.resize(static_cast<std::size_t>(in.gcount()));
  }
  // Whatever it holds beyond that size (a file still being written, or one
  // without a size, as under /proc), in pieces.
  in.clear();
  char piece[8192];
  while (in.read(piece, sizeof piece) || in.gcount() > 0) {
    contents.append(piece, static_cast<std::size_t>(in.gcount()));
  }
  return contents;
}

Result<Done> write_file(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    return make_error(ErrorKind::io, "cannot write '" + path + "': " + std::strerror(errno));
  }
  out << contents;
  if (!out) {
    return make_error(ErrorKind::io, "cannot write '" + path + "': " + std::strerror(errno));
  }
  return k_done;
}

std::string absolute_path(const std::string& path) {
  std::error_code ec;
  auto absolute = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec);
  return ec ? path : absolute.string();
}

}  // namespace pyhot::util
