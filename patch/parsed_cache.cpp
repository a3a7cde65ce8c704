#include "patch/parsed_cache.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "parser/serialize.hpp"
#include "util/file.hpp"
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
  auto bytes = util::read_file(entry_path(hash));
  if (!bytes || bytes->size() < 8) {
    return std::nullopt;
  }
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i) {
    length = (length << 8) | static_cast<unsigned char>((*bytes)[static_cast<std::size_t>(i)]);
  }
  if (length > bytes->size() - 8) {
    return std::nullopt;
  }
  std::string text = bytes->substr(8, length);
  auto file = parser::deserialize(std::string_view(*bytes).substr(8 + length), text);
  if (!file) {
    return std::nullopt;
  }
  file->path = path;
  return std::move(*file);
}

void ParsedCache::store(const parser::SourceFile& file) const {
  std::error_code ec;
  std::filesystem::create_directories(m_directory, ec);
  std::string final_path = entry_path(util::hash_hex(file.text));
  if (std::filesystem::exists(final_path, ec)) {
    return;
  }
  std::string temporary = final_path + ".tmp" + std::to_string(getpid());
  std::string entry;
  std::uint64_t length = file.text.size();
  for (int i = 0; i < 8; ++i) {
    entry.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
  }
  entry += file.text;
  entry += parser::serialize(file);
  if (!util::write_file(temporary, entry)) {
    std::filesystem::remove(temporary, ec);
    return;
  }
  std::filesystem::rename(temporary, final_path, ec);
  evict_oldest(m_directory);
}

}  // namespace pyhot::patch
