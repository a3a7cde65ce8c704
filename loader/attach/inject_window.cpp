#include "loader/attach/inject_window.hpp"

#include <algorithm>
#include <thread>

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

bool wait_until_done(const InjectOptions& options, InjectClock::time_point until) {
  if (!options.is_done) {
    return false;
  }
  for (int round = 0;; ++round) {
    if (options.is_done()) {
      return true;
    }
    if (InjectClock::now() >= until) {
      return false;
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
