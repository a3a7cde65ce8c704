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
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
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
