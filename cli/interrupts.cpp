#include "cli/interrupts.hpp"

#include <signal.h>
#include <time.h>

#include <algorithm>

namespace pyhot::cli {

namespace {

volatile sig_atomic_t g_interrupted = 0;

void note_interrupt(int) { g_interrupted = 1; }

constexpr int k_signals[3] = {SIGINT, SIGTERM, SIGHUP};
struct sigaction g_previous[3]{};

}  // namespace

InterruptScope::InterruptScope() {
  g_interrupted = 0;
  struct sigaction action {};
  action.sa_handler = note_interrupt;
  sigemptyset(&action.sa_mask);
  for (int i = 0; i < 3; ++i) {
    sigaction(k_signals[i], &action, &g_previous[i]);
  }
}

InterruptScope::~InterruptScope() {
  for (int i = 0; i < 3; ++i) {
    sigaction(k_signals[i], &g_previous[i], nullptr);
  }
}

bool interrupted() { return g_interrupted != 0; }

void pause_until(std::chrono::steady_clock::time_point until) {
  using Clock = std::chrono::steady_clock;
  while (!g_interrupted && Clock::now() < until) {
    auto left = std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(100));
    auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec wait{static_cast<time_t>(nanos / 1000000000), static_cast<long>(nanos % 1000000000)};
    nanosleep(&wait, nullptr);
  }
}

}  // namespace pyhot::cli
