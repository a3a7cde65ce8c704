#include "loader/attach/inject_window.hpp"

#include <algorithm>
#include <optional>
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
