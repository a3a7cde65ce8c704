// What both injection paths need while they hold a target: the signal
// shield, the overall deadline, and waiting for the bootstrap to have run.
#pragma once

#include <signal.h>

#include <chrono>
#include <string>

#include "loader/attach/injector.hpp"

namespace pyhot::loader::attach {

using InjectClock = std::chrono::steady_clock;

// Keeps Ctrl-C and kill from ending pyhot while the target runs injected
// code. Pending signals are delivered when the shield goes away, after the
// target is restored.
class SignalShield {
 public:
  SignalShield();
  ~SignalShield();
  SignalShield(const SignalShield&) = delete;
  SignalShield& operator=(const SignalShield&) = delete;

 private:
  sigset_t m_previous{};
};

// How long the process must be seen stopped without a break before the
// wait ends (and pyhot, stopped while it holds a target, is killed): a debugger or strace passing through a stop is not
// a stopped process; a SIGSTOP or a debugger at its prompt is.
inline constexpr std::chrono::milliseconds k_stopped_for{100};

// While it lives, a watchdog process kills pyhot with SIGKILL if pyhot is
// seen stopped (SIGSTOP, a debugger at its prompt; state T or t) for
// k_stopped_for: a tracee stays stopped for as long as its tracer is, and
// the kernel releases it only when the tracer exits, which a SIGKILL of
// pyhot mid-attach leaves safe. The watchdog leaves pyhot's process group
// so a stop sent to the group does not stop it too, and ends when pyhot
// closes the pipe (the guard goes away, or pyhot exits). `target` is named
// in the one line it prints.
class StopWatchdog {
 public:
  explicit StopWatchdog(int target);
  ~StopWatchdog();
  StopWatchdog(const StopWatchdog&) = delete;
  StopWatchdog& operator=(const StopWatchdog&) = delete;

 private:
  int m_pipe = -1;  // the write end; closing it ends the watchdog
  int m_watchdog = -1;
};

enum class WaitEnd {
  done,       // options.is_done became true
  timed_out,  // `until` passed (at once without is_done)
  stopped,    // the process stayed stopped (SIGSTOP, a debugger) for k_stopped_for
};

// Polls options.is_done until it is true or `until`, and ends as soon as
// process `pid` is seen stopped (state T or t) for k_stopped_for: no thread
// of it can run the bootstrap until it is resumed.
WaitEnd wait_until_done(int pid, const InjectOptions& options, InjectClock::time_point until);

// The one line for a wait that ended WaitEnd::stopped, after `queued`
// ("the bootstrap is queued in process N") was expired by hand.
Error stopped_after_queuing(int pid, const std::string& queued);

// Time left before `deadline`, at least 50 ms so a last step can finish.
std::chrono::milliseconds remaining(InjectClock::time_point deadline);

// When a bootstrap queued now must no longer run (boot_clock_seconds()):
// before `deadline` by the time the agent takes to come up (a third of the
// time left, at most a second), so one that runs in time is up when pyhot
// stops waiting.
double bootstrap_expiry(InjectClock::time_point deadline);

}  // namespace pyhot::loader::attach
