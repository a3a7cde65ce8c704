#include "util/file_watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace pyhot::util {

namespace {

using Clock = std::chrono::steady_clock;

// A file modified but not closed may be half written (a slow writer, a large
// file written in chunks): give its writer this long to close it.
constexpr std::chrono::milliseconds k_open_writer_grace{1000};

constexpr std::uint32_t k_directory_mask = IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                           IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

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
  if (name.empty() || name == "4913" || ends_with(name, "~") || name.rfind(".#", 0) == 0) {
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
  int inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd < 0) {
    return make_error(errno == EMFILE ? ErrorKind::refused : ErrorKind::io,
                      std::string("cannot start inotify: ") + std::strerror(errno) +
                          (errno == EMFILE ? " (raise fs.inotify.max_user_instances)" : ""));
  }
  int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    int saved = errno;
    ::close(inotify_fd);
    return make_error(ErrorKind::io, std::string("cannot create an eventfd: ") + std::strerror(saved));
  }
  return std::unique_ptr<FileWatcher>(new FileWatcher(inotify_fd, wake_fd, std::move(options)));
}

FileWatcher::FileWatcher(int inotify_fd, int wake_fd, FileWatcherOptions options)
    : m_inotify_fd(inotify_fd), m_wake_fd(wake_fd), m_options(std::move(options)) {}

FileWatcher::~FileWatcher() {
  ::close(m_inotify_fd);
  ::close(m_wake_fd);
}

bool FileWatcher::wanted_name(const std::string& name) const {
  if (is_editor_scratch_name(name)) {
    return false;
  }
  if (m_options.suffixes.empty()) {
    return true;
  }
  return std::any_of(m_options.suffixes.begin(), m_options.suffixes.end(),
                     [&](const std::string& suffix) { return name.size() > suffix.size() && ends_with(name, suffix); });
}

bool FileWatcher::wanted_in(const Directory& directory, const std::string& name) const {
  return (directory.all_names || directory.names.count(name) > 0) && wanted_name(name);
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

Result<Done> FileWatcher::add_directory(const std::string& path, bool recursive, const std::string& only_name,
                                        std::vector<std::string>* found) {
  int descriptor = inotify_add_watch(m_inotify_fd, path.c_str(), k_directory_mask);
  if (descriptor < 0) {
    int saved = errno;
    std::string hint = saved == ENOSPC ? " (raise fs.inotify.max_user_watches)" : "";
    return make_error(saved == EACCES ? ErrorKind::permission_denied : ErrorKind::io,
                      "cannot watch '" + path + "': " + std::strerror(saved) + hint);
  }
  // The same directory gives the same descriptor; the watches merge.
  if (auto stale = m_descriptors.find(path); stale != m_descriptors.end() && stale->second != descriptor) {
    m_directories.erase(stale->second);
  }
  Directory& directory = m_directories[descriptor];
  bool was_recursive = directory.recursive;
  directory.path = path;
  directory.recursive = directory.recursive || recursive;
  if (only_name.empty()) {
    directory.all_names = true;
  } else {
    directory.names.insert(only_name);
  }
  m_descriptors[path] = descriptor;
  if (!recursive || was_recursive) {
    return k_done;
  }
  std::error_code error;
  std::vector<std::string> subdirectories;
  for (std::filesystem::directory_iterator it(path, error), end; !error && it != end; it.increment(error)) {
    std::string name = it->path().filename().string();
    std::error_code kind_error;
    if (it->is_directory(kind_error) && !it->is_symlink(kind_error)) {
      if (m_options.ignored_directories.count(name) == 0) {
        subdirectories.push_back(it->path().string());
      }
    } else if (found != nullptr && wanted_name(name)) {
      found->push_back(it->path().string());
    }
  }
  for (const auto& subdirectory : subdirectories) {
    // A subdirectory that vanished or cannot be read is not a reason to fail the whole tree.
    (void)add_directory(subdirectory, true, "", found);
  }
  return k_done;
}

void FileWatcher::forget_directory_tree(const std::string& path) {
  std::string prefix = path + "/";
  for (auto it = m_descriptors.begin(); it != m_descriptors.end();) {
    if (it->first == path || it->first.rfind(prefix, 0) == 0) {
      inotify_rm_watch(m_inotify_fd, it->second);
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
  alignas(struct inotify_event) char buffer[64 * 1024];
  for (;;) {
    ssize_t size = ::read(m_inotify_fd, buffer, sizeof buffer);
    if (size < 0 && errno == EINTR) {
      continue;
    }
    if (size <= 0) {
      return;  // EAGAIN: drained
    }
    for (char* at = buffer; at < buffer + size;) {
      auto* event = reinterpret_cast<struct inotify_event*>(at);
      at += sizeof(struct inotify_event) + event->len;
      if ((event->mask & IN_Q_OVERFLOW) != 0) {
        m_overflowed = true;
        continue;
      }
      auto directory_it = m_directories.find(event->wd);
      if ((event->mask & IN_IGNORED) != 0) {
        if (directory_it != m_directories.end()) {
          m_descriptors.erase(directory_it->second.path);
          m_directories.erase(directory_it);
        }
        continue;
      }
      if (directory_it == m_directories.end() || event->len == 0) {
        continue;  // IN_DELETE_SELF / IN_MOVE_SELF: IN_IGNORED follows
      }
      // Copies: add_directory below may rehash the maps.
      Directory directory = directory_it->second;
      std::string name = event->name;
      std::string path = join(directory.path, name);
      if ((event->mask & IN_ISDIR) != 0) {
        if (!directory.recursive || m_options.ignored_directories.count(name) > 0) {
          continue;
        }
        if ((event->mask & IN_MOVED_FROM) != 0 || (event->mask & IN_DELETE) != 0) {
          forget_directory_tree(path);
        } else if ((event->mask & (IN_CREATE | IN_MOVED_TO)) != 0) {
          // Files may have been written before the watch was in place: report them.
          std::vector<std::string> found;
          (void)add_directory(path, true, "", &found);
          for (const auto& file : found) {
            touch(file, now, false);
          }
        }
        continue;
      }
      if (!wanted_in(directory, name)) {
        continue;
      }
      touch(path, now, (event->mask & IN_MODIFY) != 0);
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
    // Round up so a poll that returns a hair early does not spin.
    auto wait_us = std::chrono::duration_cast<std::chrono::microseconds>(wake_at - now).count();
    int wait_ms = static_cast<int>(std::max<std::int64_t>(0, (wait_us + 999) / 1000));
    struct pollfd fds[2] = {{m_inotify_fd, POLLIN, 0}, {m_wake_fd, POLLIN, 0}};
    int ready = ::poll(fds, 2, wait_ms);
    if (ready < 0 && errno != EINTR) {
      return {};
    }
    if (ready < 0 || (fds[1].revents & POLLIN) != 0) {
      std::uint64_t count = 0;
      while (::read(m_wake_fd, &count, sizeof count) > 0) {
      }
      read_events(Clock::now());
      return take_settled(Clock::now());
    }
  }
}

void FileWatcher::interrupt() const {
  std::uint64_t one = 1;
  // Nothing useful to do on failure in a signal handler; the counter cannot overflow in practice.
  [[maybe_unused]] auto written = ::write(m_wake_fd, &one, sizeof one);
}

}  // namespace pyhot::util
