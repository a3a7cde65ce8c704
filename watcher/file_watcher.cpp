#include "watcher/file_watcher.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "watcher/backend.hpp"
#include "watcher/walk.hpp"

namespace pyhot::watcher {

namespace {

using Clock = std::chrono::steady_clock;

// A file modified but not closed may be half written (a slow writer, a large
// file written in chunks): give its writer this long to close it.
constexpr std::chrono::milliseconds k_open_writer_grace{1000};

std::string join(const std::string& directory, const std::string& name) {
  if (!directory.empty() && directory.back() == '/') {
    return directory + name;
  }
  return directory + "/" + name;
}

bool is_regular_file(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

}  // namespace

bool is_editor_scratch_name(const std::string& name) {
  if (name.empty() || name == "4913" || name.ends_with("~") || name.starts_with(".#")) {
    return true;
  }
  // vim swap files: .x.swp, .x.swo, ... .x.swa, and .swx
  if (name.size() >= 4) {
    std::string tail = name.substr(name.size() - 4);
    if (tail == ".swp" || tail == ".swx" || (tail.compare(0, 3, ".sw") == 0 && name[0] == '.')) {
      return true;
    }
  }
  return false;
}

Result<std::unique_ptr<FileWatcher>> FileWatcher::create(FileWatcherOptions options) {
  auto backend = make_inotify_backend();
  if (!backend) {
    return backend.error();
  }
  return std::unique_ptr<FileWatcher>(new FileWatcher(std::move(*backend), std::move(options)));
}

FileWatcher::FileWatcher(std::unique_ptr<Backend> backend, FileWatcherOptions options)
    : m_backend(std::move(backend)), m_options(std::move(options)) {}

FileWatcher::~FileWatcher() = default;

bool FileWatcher::wanted_in(const Directory& directory, const std::string& name) const {
  return (directory.all_names || directory.names.count(name) > 0) && m_options.filter.wants_file(name);
}

Result<Done> FileWatcher::watch(const std::string& path, Depth depth) {
  std::error_code error;
  auto absolute = std::filesystem::absolute(path, error).lexically_normal();
  if (error) {
    return make_error(ErrorKind::io, "cannot watch '" + path + "': " + error.message());
  }
  std::string text = absolute.string();
  if (text.size() > 1 && text.back() == '/') {
    text.pop_back();
  }
  auto status = std::filesystem::status(absolute, error);
  if (error || !std::filesystem::exists(status)) {
    return make_error(ErrorKind::not_found, "cannot watch '" + path + "': no such file or directory");
  }
  if (std::filesystem::is_directory(status)) {
    return add_directory(text, depth == Depth::recursive, "", nullptr);
  }
  return add_directory(absolute.parent_path().string(), false, absolute.filename().string(), nullptr);
}

// Whether the tree below `path` is still to be walked: it is watched
// recursively now and was not before.
Result<bool> FileWatcher::add_one_directory(const std::string& path, bool recursive, const std::string& only_name) {
  auto descriptor = m_backend->add_directory(path);
  if (!descriptor) {
    return descriptor.error();
  }
  // The same directory gives the same descriptor; the watches merge.
  if (auto stale = m_descriptors.find(path); stale != m_descriptors.end() && stale->second != *descriptor) {
    m_directories.erase(stale->second);
  }
  Directory& directory = m_directories[*descriptor];
  bool was_recursive = directory.recursive;
  directory.path = path;
  directory.recursive = directory.recursive || recursive;
  if (only_name.empty()) {
    directory.all_names = true;
  } else {
    directory.names.insert(only_name);
  }
  m_descriptors[path] = *descriptor;
  return recursive && !was_recursive;
}

Result<Done> FileWatcher::add_directory(const std::string& path, bool recursive, const std::string& only_name,
                                        std::vector<std::string>* found) {
  auto added = add_one_directory(path, recursive, only_name);
  if (!added) {
    return added.error();
  }
  if (*added) {
    auto enter = [this](const std::string& subdirectory) {
      auto below = add_one_directory(subdirectory, true, "");
      return below && *below;
    };
    walk_below(path, m_options.filter, enter, found);
  }
  return k_done;
}

void FileWatcher::forget_directory_tree(const std::string& path) {
  std::string prefix = path + "/";
  for (auto it = m_descriptors.begin(); it != m_descriptors.end();) {
    if (it->first == path || it->first.starts_with(prefix)) {
      m_backend->remove_directory(it->second);
      m_directories.erase(it->second);
      it = m_descriptors.erase(it);
    } else {
      ++it;
    }
  }
}

void FileWatcher::touch(const std::string& path, Clock::time_point now, bool writing) {
  auto [it, inserted] = m_pending.try_emplace(path);
  if (inserted) {
    it->second.order = m_next_order++;
  }
  it->second.last_event = now;
  it->second.writing = writing;
}

void FileWatcher::read_events(Clock::time_point now) {
  for (const DirectoryEvent& event : m_backend->drain()) {
    if (event.kind == DirectoryEvent::Kind::overflow) {
      m_overflowed = true;
      continue;
    }
    auto directory_it = m_directories.find(event.directory);
    if (directory_it == m_directories.end()) {
      continue;
    }
    if (event.kind == DirectoryEvent::Kind::watch_removed) {
      m_descriptors.erase(directory_it->second.path);
      m_directories.erase(directory_it);
      continue;
    }
    // Copies: add_directory below may change the maps.
    Directory directory = directory_it->second;
    std::string path = join(directory.path, event.name);
    if (event.kind == DirectoryEvent::Kind::file) {
      if (wanted_in(directory, event.name)) {
        touch(path, now, event.writing);
      }
      continue;
    }
    if (!directory.recursive || m_options.filter.skips_directory(event.name)) {
      continue;
    }
    if (event.kind == DirectoryEvent::Kind::directory_removed) {
      forget_directory_tree(path);
    } else {
      // Files may have been written before the watch was in place: report them.
      std::vector<std::string> found;
      (void)add_directory(path, true, "", &found);
      for (const auto& file : found) {
        touch(file, now, false);
      }
    }
  }
}

Clock::time_point FileWatcher::settles_at(const Pending& pending) const {
  return pending.last_event +
         (pending.writing ? std::max(m_options.debounce, k_open_writer_grace) : m_options.debounce);
}

std::vector<FileEvent> FileWatcher::take_settled(Clock::time_point now) {
  std::vector<std::pair<std::uint64_t, FileEvent>> settled;
  for (auto it = m_pending.begin(); it != m_pending.end();) {
    if (settles_at(it->second) > now) {
      ++it;
      continue;
    }
    FileEvent event;
    event.path = it->first;
    event.kind = is_regular_file(it->first) ? FileEvent::Kind::changed : FileEvent::Kind::deleted;
    settled.emplace_back(it->second.order, std::move(event));
    it = m_pending.erase(it);
  }
  std::sort(settled.begin(), settled.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<FileEvent> events;
  if (m_overflowed) {
    m_overflowed = false;
    events.push_back(FileEvent{FileEvent::Kind::overflow, ""});
  }
  for (auto& [order, event] : settled) {
    events.push_back(std::move(event));
  }
  return events;
}

std::vector<FileEvent> FileWatcher::wait(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto now = Clock::now();
    read_events(now);
    auto events = take_settled(now);
    if (!events.empty() || now >= deadline) {
      return events;
    }
    auto wake_at = deadline;
    for (const auto& [path, pending] : m_pending) {
      wake_at = std::min(wake_at, settles_at(pending));
    }
    // Round up so a wait that returns a hair early does not spin.
    auto wait_us = std::chrono::duration_cast<std::chrono::microseconds>(wake_at - now).count();
    std::chrono::milliseconds wait_ms{std::max<std::int64_t>(0, (wait_us + 999) / 1000)};
    switch (m_backend->wait(wait_ms)) {
      case Backend::Wake::failed:
        return {};
      case Backend::Wake::interrupted:
        read_events(Clock::now());
        return take_settled(Clock::now());
      case Backend::Wake::ready:
        break;
    }
  }
}

void FileWatcher::interrupt() const { m_backend->interrupt(); }

}  // namespace pyhot::watcher
