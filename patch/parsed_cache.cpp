#include "patch/parsed_cache.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string_view>
#include <vector>

#include "parser/serialize.hpp"
#include "util/text.hpp"

namespace pyhot::patch {

namespace {

// Enough for every module an engineer edits in a day; older entries go.
constexpr std::size_t k_max_entries = 256;
// ".bin" entries (without their text) were an earlier format.
constexpr const char* k_extension = ".parsed";

std::string cache_directory() {
  if (const char* dir = std::getenv("PYHOT_CACHE_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  if (const char* dir = std::getenv("XDG_CACHE_HOME"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/pyhot/parsed";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.cache/pyhot/parsed";
  }
  return "/tmp/pyhot-cache-" + std::to_string(getuid()) + "/parsed";
}

void evict_oldest(const std::string& directory) {
  std::error_code ec;
  std::vector<std::pair<std::filesystem::file_time_type, std::filesystem::path>> entries;
  for (const auto& entry : std::filesystem::directory_iterator(directory, ec)) {
    if (entry.path().extension() == k_extension) {
      entries.emplace_back(entry.last_write_time(ec), entry.path());
    }
  }
  if (entries.size() <= k_max_entries) {
    return;
  }
  std::sort(entries.begin(), entries.end());
  for (std::size_t i = 0; i + k_max_entries < entries.size(); ++i) {
    std::filesystem::remove(entries[i].second, ec);
  }
}

// An entry's bytes, mapped and read in up front (MAP_POPULATE: one call
// instead of a fault per page of a megabytes-long entry).
class MappedEntry {
 public:
  explicit MappedEntry(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return;
    }
    struct stat status {};
    if (::fstat(fd, &status) == 0 && status.st_size > 0) {
      void* at =
          ::mmap(nullptr, static_cast<std::size_t>(status.st_size), PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
      if (at != MAP_FAILED) {
        m_bytes = std::string_view(static_cast<const char*>(at), static_cast<std::size_t>(status.st_size));
      }
    }
    ::close(fd);
  }
  ~MappedEntry() {
    if (!m_bytes.empty()) {
      ::munmap(const_cast<char*>(m_bytes.data()), m_bytes.size());
    }
  }
  MappedEntry(const MappedEntry&) = delete;
  MappedEntry& operator=(const MappedEntry&) = delete;

  std::string_view bytes() const { return m_bytes; }

 private:
  std::string_view m_bytes;
};

// Every byte of `bytes` to `fd`, or false.
bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) {
      continue;
    }
    if (written <= 0) {
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

// The entry of `file` at `path`: its text's length, the text, then the
// SourceFile serialized in pieces as it is made (never built whole in
// memory), or false.
bool write_entry(const std::string& path, const parser::SourceFile& file, std::uint64_t text_hash) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return false;
  }
  char length[8];
  for (int i = 0; i < 8; ++i) {
    length[i] = static_cast<char>((static_cast<std::uint64_t>(file.text.size()) >> (8 * i)) & 0xff);
  }
  bool ok = write_all(fd, std::string_view(length, sizeof(length))) && write_all(fd, file.text) &&
            parser::serialize(file, text_hash, [fd](std::string_view bytes) { return write_all(fd, bytes); });
  return ::close(fd) == 0 && ok;
}

}  // namespace

ParsedCache::ParsedCache() : m_directory(cache_directory()) {}

// An entry: the text's length (8 bytes, little-endian), the text, then the
// serialized SourceFile.
std::string ParsedCache::entry_path(const std::string& hash) const { return m_directory + "/" + hash + k_extension; }

std::optional<parser::SourceFile> ParsedCache::load(const std::string& text, const std::string& path) const {
  auto file = load_by_hash(util::hash_hex(text), path);
  if (!file || file->text != text) {
    return std::nullopt;
  }
  return file;
}

std::optional<parser::SourceFile> ParsedCache::load_by_hash(const std::string& hash, const std::string& path) const {
  MappedEntry entry(entry_path(hash));
  std::string_view bytes = entry.bytes();
  if (bytes.size() < 8) {
    return std::nullopt;
  }
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i) {
    length = (length << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  }
  if (length > bytes.size() - 8) {
    return std::nullopt;
  }
  auto file = parser::deserialize(bytes.substr(8 + length), std::string(bytes.substr(8, length)));
  if (!file) {
    return std::nullopt;
  }
  file->path = path;
  return std::move(*file);
}

void ParsedCache::store(const parser::SourceFile& file) const {
  std::error_code ec;
  std::filesystem::create_directories(m_directory, ec);
  // One hash of the text names the entry and goes into it.
  const std::uint64_t text_hash = util::hash64(file.text);
  std::string final_path = entry_path(util::to_hex(text_hash));
  if (std::filesystem::exists(final_path, ec)) {
    return;
  }
  std::string temporary = final_path + ".tmp" + std::to_string(getpid());
  if (!write_entry(temporary, file, text_hash)) {
    std::filesystem::remove(temporary, ec);
    return;
  }
  std::filesystem::rename(temporary, final_path, ec);
  evict_oldest(m_directory);
}

}  // namespace pyhot::patch
