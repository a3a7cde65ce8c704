// The Linux inotify backend of the FileWatcher.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "watcher/backend.hpp"

namespace pyhot::watcher {

namespace {

constexpr std::uint32_t k_directory_mask = IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                           IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK;

class InotifyBackend final : public Backend {
 public:
  InotifyBackend(int inotify_fd, int wake_fd) : m_inotify_fd(inotify_fd), m_wake_fd(wake_fd) {}
  ~InotifyBackend() override {
    ::close(m_inotify_fd);
    ::close(m_wake_fd);
  }
  InotifyBackend(const InotifyBackend&) = delete;
  InotifyBackend& operator=(const InotifyBackend&) = delete;

  Result<int> add_directory(const std::string& path) override {
    int descriptor = inotify_add_watch(m_inotify_fd, path.c_str(), k_directory_mask);
    if (descriptor < 0) {
      int saved = errno;
      std::string hint = saved == ENOSPC ? " (raise fs.inotify.max_user_watches)" : "";
      return make_error(saved == EACCES ? ErrorKind::permission_denied : ErrorKind::io,
                        "cannot watch '" + path + "': " + std::strerror(saved) + hint);
    }
    return descriptor;
  }

  void remove_directory(int id) override { inotify_rm_watch(m_inotify_fd, id); }

  std::vector<DirectoryEvent> drain() override {
    std::vector<DirectoryEvent> events;
    alignas(struct inotify_event) char buffer[64 * 1024];
    for (;;) {
      ssize_t size = ::read(m_inotify_fd, buffer, sizeof buffer);
      if (size < 0 && errno == EINTR) {
        continue;
      }
      if (size <= 0) {
        return events;  // EAGAIN: drained
      }
      for (char* at = buffer; at < buffer + size;) {
        auto* event = reinterpret_cast<struct inotify_event*>(at);
        at += sizeof(struct inotify_event) + event->len;
        translate(*event, events);
      }
    }
  }

  Wake wait(std::chrono::milliseconds timeout) override {
    struct pollfd fds[2] = {{m_inotify_fd, POLLIN, 0}, {m_wake_fd, POLLIN, 0}};
    int ready = ::poll(fds, 2, static_cast<int>(timeout.count()));
    if (ready < 0 && errno != EINTR) {
      return Wake::failed;
    }
    // A signal (EINTR) counts as an interrupt: its handler may have asked to stop.
    if (ready < 0 || (fds[1].revents & POLLIN) != 0) {
      std::uint64_t count = 0;
      while (::read(m_wake_fd, &count, sizeof count) > 0) {
      }
      return Wake::interrupted;
    }
    return Wake::ready;
  }

  void interrupt() const override {
    std::uint64_t one = 1;
    // Nothing useful to do on failure in a signal handler; the counter cannot overflow in practice.
    [[maybe_unused]] auto written = ::write(m_wake_fd, &one, sizeof one);
  }

 private:
  static void translate(const struct inotify_event& event, std::vector<DirectoryEvent>& out) {
    if ((event.mask & IN_Q_OVERFLOW) != 0) {
      out.push_back({DirectoryEvent::Kind::overflow, -1, "", false});
      return;
    }
    if ((event.mask & IN_IGNORED) != 0) {
      out.push_back({DirectoryEvent::Kind::watch_removed, event.wd, "", false});
      return;
    }
    if (event.len == 0) {
      return;  // IN_DELETE_SELF / IN_MOVE_SELF: IN_IGNORED follows
    }
    std::string name = event.name;
    if ((event.mask & IN_ISDIR) != 0) {
      if ((event.mask & (IN_MOVED_FROM | IN_DELETE)) != 0) {
        out.push_back({DirectoryEvent::Kind::directory_removed, event.wd, std::move(name), false});
      } else if ((event.mask & (IN_CREATE | IN_MOVED_TO)) != 0) {
        out.push_back({DirectoryEvent::Kind::directory_added, event.wd, std::move(name), false});
      }
      return;
    }
    out.push_back({DirectoryEvent::Kind::file, event.wd, std::move(name), (event.mask & IN_MODIFY) != 0});
  }

  int m_inotify_fd = -1;
  int m_wake_fd = -1;
};

}  // namespace

Result<std::unique_ptr<Backend>> make_inotify_backend() {
  int inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd < 0) {
    int saved = errno;
    return make_error(saved == EMFILE ? ErrorKind::refused : ErrorKind::io,
                      std::string("cannot start inotify: ") + std::strerror(saved) +
                          (saved == EMFILE ? " (raise fs.inotify.max_user_instances)" : ""));
  }
  int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    int saved = errno;
    ::close(inotify_fd);
    return make_error(ErrorKind::io, std::string("cannot create an eventfd: ") + std::strerror(saved));
  }
  return std::unique_ptr<Backend>(std::make_unique<InotifyBackend>(inotify_fd, wake_fd));
}

}  // namespace pyhot::watcher
