// Ctrl-C during a command that instruments a live process for a while
// (profile, watch, probe, trace): it ends the session cleanly instead of
// killing pyhot with its instrumentation still in the target.
#pragma once

#include <chrono>

namespace pyhot::cli {

// While alive, SIGINT, SIGTERM and SIGHUP only set interrupted(): the
// command removes its instrumentation and reports, as at its normal end.
class InterruptScope {
 public:
  InterruptScope();
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
};
bool interrupted();

// Sleeps until `until` or an interrupt, whichever comes first.
void pause_until(std::chrono::steady_clock::time_point until);

}  // namespace pyhot::cli
