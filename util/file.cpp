#include "util/file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/text.hpp"

namespace pyhot::util {

namespace {

// What a path that is not a regular file holds, in a user's words.
std::string kind_of_file(mode_t mode) {
  if (S_ISDIR(mode)) {
    return "a directory";
  }
  if (S_ISFIFO(mode)) {
    return "a named pipe";
  }
  if (S_ISSOCK(mode)) {
    return "a socket";
  }
  if (S_ISCHR(mode) || S_ISBLK(mode)) {
    return "a device";
  }
  return "not a regular file";
}

}  // namespace

Result<std::string> read_file(const std::string& path) {
  // Opened without blocking and checked before a byte is read: a named pipe
  // would wait for a writer forever (one planted as a module's editor
  // backup or as a file the target imported would hang the command), a
  // device could be read without end. /proc's files are regular files.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int saved = errno;
    auto kind = saved == EACCES ? ErrorKind::permission_denied : ErrorKind::not_found;
    return make_error(kind, "cannot read '" + path + "': " + std::strerror(saved));
  }
  struct stat status {};
  if (fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
    mode_t mode = status.st_mode;
    ::close(fd);
    return make_error(ErrorKind::usage,
                      "cannot read '" + path + "': it is " + kind_of_file(mode) + ", not a Python file");
  }
  // Read into a string of the file's size and one byte more: a stream
  // copied into a growing buffer touched three times the file's bytes in
  // fresh memory, a page fault per 4 KiB (a megabytes-long module), and a
  // string of exactly its size had to grow (a copy of the whole text) only
  // to see the end of the file. Whatever it holds beyond that size (a file
  // still being written, or one without a size, as under /proc) is read
  // after it, in pieces.
  std::string contents(static_cast<std::size_t>(std::max<off_t>(status.st_size, 0)) + 1, '\0');
  std::size_t filled = 0;
  while (true) {
    if (filled == contents.size()) {
      contents.resize(contents.size() + 8192);
    }
    ssize_t count = ::read(fd, contents.data() + filled, contents.size() - filled);
    if (count < 0 && errno == EINTR) {
      continue;
    }
    if (count < 0) {
      int saved = errno;
      ::close(fd);
      return make_error(ErrorKind::io, "cannot read '" + path + "': " + std::strerror(saved));
    }
    if (count == 0) {
      break;
    }
    filled += static_cast<std::size_t>(count);
  }
  ::close(fd);
  contents.resize(filled);
  return contents;
}

namespace {

Error too_large_error(const std::string& path, std::uintmax_t size) {
  auto tenths = size * 10 / (1U << 20);
  return make_error(ErrorKind::refused, "'" + path + "' is " + std::to_string(tenths / 10) + "." +
                                            std::to_string(tenths % 10) + " MiB, over the " +
                                            std::to_string(k_max_source_bytes >> 20) +
                                            " MiB pyhot reads as one Python file; nothing was read or sent "
                                            "(split it into smaller modules)");
}

}  // namespace

Result<Done> check_source_size(const std::string& path) {
  std::error_code error;
  auto size = std::filesystem::file_size(path, error);
  if (!error && size > k_max_source_bytes) {
    return too_large_error(path, size);
  }
  return k_done;  // a file that cannot be sized is read_file's to report
}

Result<std::string> read_python_file(const std::string& path) {
  if (auto sized = check_source_size(path); !sized) {
    return sized.error();
  }
  auto text = read_file(path);
  if (text && text->size() > k_max_source_bytes) {
    return too_large_error(path, text->size());  // it grew while it was read
  }
  return text;
}

Result<std::string> read_source_unchecked(const std::string& path) {
  auto text = read_python_file(path);
  if (!text) {
    return text;
  }
  constexpr std::string_view k_bom = "\xEF\xBB\xBF";
  if (std::string_view(*text).starts_with(k_bom)) {
    text->erase(0, k_bom.size());
  }
  return text;
}

constexpr const char* k_utf8_refusal = "): pyhot reads source files as UTF-8 only";

std::optional<Error> utf8_error(const std::string& path, std::string_view text) {
  std::size_t bad = first_non_utf8(text);
  if (bad == std::string::npos) {
    return std::nullopt;
  }
  std::size_t line_start = bad == 0 ? std::string::npos : text.rfind('\n', bad - 1);
  auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
  auto column = bad - (line_start == std::string::npos ? 0 : line_start + 1) + 1;
  static constexpr char k_hex[] = "0123456789abcdef";
  auto byte = static_cast<unsigned char>(text[bad]);
  return make_error(ErrorKind::syntax_error, path + ":" + std::to_string(line) + ":" + std::to_string(column) +
                                                 ": not UTF-8 (byte 0x" + k_hex[byte >> 4] + k_hex[byte & 0xF] +
                                                 k_utf8_refusal);
}

bool is_utf8_error(const Error& error) {
  return error.kind == ErrorKind::syntax_error && error.message.ends_with(k_utf8_refusal);
}

Result<std::string> read_source(const std::string& path) {
  auto text = read_source_unchecked(path);
  if (!text) {
    return text;
  }
  if (auto error = utf8_error(path, *text)) {
    return *error;
  }
  return text;
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
