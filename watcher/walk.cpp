#include "watcher/walk.hpp"

#include <algorithm>
#include <filesystem>

namespace pyhot::watcher {

void walk_below(const std::string& root, const WatchFilter& filter,
                const std::function<bool(const std::string& directory)>& enter, std::vector<std::string>* files) {
  std::error_code error;
  std::vector<std::filesystem::path> subdirectories;
  std::vector<std::filesystem::path> found;
  for (std::filesystem::directory_iterator it(root, error), end; !error && it != end; it.increment(error)) {
    std::string name = it->path().filename().string();
    std::error_code kind_error;
    if (it->is_directory(kind_error)) {
      if (!it->is_symlink(kind_error) && !filter.skips_directory(name)) {
        subdirectories.push_back(it->path());
      }
    } else if (files != nullptr && filter.wants_file(name)) {
      found.push_back(it->path());
    }
  }
  std::sort(found.begin(), found.end());
  std::sort(subdirectories.begin(), subdirectories.end());
  if (files != nullptr) {
    for (const auto& file : found) {
      files->push_back(file.string());
    }
  }
  for (const auto& subdirectory : subdirectories) {
    if (enter(subdirectory.string())) {
      walk_below(subdirectory.string(), filter, enter, files);
    }
  }
}

std::vector<std::string> find_files(const std::string& root, const WatchFilter& filter) {
  std::vector<std::string> files;
  walk_below(
      root, filter, [](const std::string&) { return true; }, &files);
  return files;
}

}  // namespace pyhot::watcher
