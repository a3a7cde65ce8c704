#include "loader/attach/inject_window.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "loader/attach/proc_info.hpp"

namespace pyhot::loader::attach {

SignalShield::SignalShield() {
  sigset_t block;
  sigemptyset(&block);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGPIPE}) {
    sigaddset(&block, sig);
  }
  pthread_sigmask(SIG_BLOCK, &block, &m_previous);
}

SignalShield::~SignalShield() { pthread_sigmask(SIG_SETMASK, &m_previous, nullptr); }

namespace {

// The state letter of /proc/PID/stat (after the last ')', as a command
// name may hold one), or 0. Async-signal-safe: it runs in a forked child.
char process_state(const char* stat_path) {
  int fd = ::open(stat_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return 0;
  }
  char text[512];
  ssize_t got = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (got <= 0) {
    return 0;
  }
  const char* close_paren = nullptr;
  for (ssize_t i = 0; i < got; ++i) {
    if (text[i] == ')') {
      close_paren = text + i;
    }
  }
  if (close_paren == nullptr || close_paren + 2 >= text + got) {
    return 0;
  }
  return close_paren[2];
}

int64_t monotonic_ms() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * 1000 + now.tv_nsec / 1000000;
}

// The watchdog's whole life, in the forked child: only async-signal-safe
// calls, since pyhot may have other threads.
[[noreturn]] void watch_for_a_stop(int done, pid_t pyhot, const char* stat_path, const std::string& message) {
  ::setpgid(0, 0);
  int64_t stopped_since = -1;
  for (;;) {
    pollfd closed{done, POLLIN, 0};
    int ready = ::poll(&closed, 1, 10);
    if (ready > 0 || (ready < 0 && errno != EINTR) || ::getppid() != pyhot) {
      ::_exit(0);
    }
    char state = process_state(stat_path);
    if (state != 'T' && state != 't') {
      stopped_since = -1;
      continue;
    }
    int64_t now = monotonic_ms();
    if (stopped_since < 0) {
      stopped_since = now;
    } else if (now - stopped_since >= k_stopped_for.count()) {
      (void)!::write(STDERR_FILENO, message.data(), message.size());
      ::kill(pyhot, SIGKILL);
      ::_exit(0);
    }
  }
}

}  // namespace

StopWatchdog::StopWatchdog(int target) {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) {
    return;  // no watchdog: the attach goes on as it did before there was one
  }
  pid_t pyhot = ::getpid();
  std::string stat_path = "/proc/" + std::to_string(pyhot) + "/stat";
  std::string message = "pyhot: killed by its watchdog: pyhot was stopped while it held process " +
                        std::to_string(target) + " stopped for the attach; process " + std::to_string(target) +
                        " runs on, unpatched; run the command again\n";
  pid_t child = ::fork();
  if (child == 0) {
    ::close(ends[1]);
    watch_for_a_stop(ends[0], pyhot, stat_path.c_str(), message);
  }
  ::close(ends[0]);
  if (child < 0) {
    ::close(ends[1]);
    return;
  }
  m_pipe = ends[1];
  m_watchdog = child;
}

StopWatchdog::~StopWatchdog() {
  if (m_watchdog < 0) {
    return;
  }
  ::close(m_pipe);
  while (::waitpid(m_watchdog, nullptr, 0) < 0 && errno == EINTR) {
  }
}

WaitEnd wait_until_done(int pid, const InjectOptions& options, InjectClock::time_point until) {
  if (!options.is_done) {
    return WaitEnd::timed_out;
  }
  std::optional<InjectClock::time_point> stopped_since;
  for (int round = 0;; ++round) {
    if (options.is_done()) {
      return WaitEnd::done;
    }
    auto now = InjectClock::now();
    if (now >= until) {
      return WaitEnd::timed_out;
    }
    auto status = read_status(pid);
    if (status && (status->state == 'T' || status->state == 't')) {
      stopped_since = stopped_since.value_or(now);
      if (now - *stopped_since >= k_stopped_for) {
        return WaitEnd::stopped;
      }
    } else {
      stopped_since.reset();
    }
    std::this_thread::sleep_for(std::chrono::microseconds(round < 100 ? 200 : 5000));
  }
}

Error stopped_after_queuing(int pid, const std::string& queued) {
  std::string number = std::to_string(pid);
  return make_error(ErrorKind::timeout, queued +
                                            " but has not run: the process was stopped while pyhot attached; resume it "
                                            "(kill -CONT " +
                                            number +
                                            ") and run the command again (the bootstrap expired: it does nothing when "
                                            "the process resumes)");
}

std::chrono::milliseconds remaining(InjectClock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - InjectClock::now());
  return std::max(left, std::chrono::milliseconds(50));
}

double bootstrap_expiry(InjectClock::time_point deadline) {
  auto left = std::chrono::duration<double>(deadline - InjectClock::now()).count();
  double startup = std::min(1.0, std::max(left, 0.0) / 3);
  return boot_clock_seconds() + std::max(left - startup, 0.05);
}

}  // namespace pyhot::loader::attach
