// Starts the agent inside a Python process that was not started with pyhot:
// finds the interpreter, and makes it run a bootstrap at a safe point.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "loader/attach/interpreter.hpp"
#include "util/result.hpp"

namespace pyhot::loader::attach {

struct InjectOptions {
  bool force = false;  // 3.14+: inject with ptrace even when remote debugging was disabled
  // Overall budget: waiting for another tracer, stopping the thread, and
  // (with is_done) waiting for the bootstrap to have run.
  std::chrono::milliseconds deadline{3000};
  // "Has the bootstrap run?" (the agent's socket exists, a marker file...).
  // When set, inject_python returns only once it is true (or times out), and
  // uses it to decide whether a stuck main thread needs the escalation.
  std::function<bool()> is_done;
  // When the main thread is parked in a non-futex syscall (sleep, select,
  // accept, read), a pending call cannot run until it returns. Then run the
  // bootstrap from that thread via PyGILState_Ensure. Never used on a thread
  // waiting in a futex (the GIL): that deadlocks.
  bool escalate = true;
  // Wake a main thread waiting in a futex (Event.wait, join, lock) with EINTR
  // so it runs pending calls now; CPython retries such waits.
  bool interrupt_futex_wait = true;
};

enum class InjectMethod {
  pending_call,  // Py_AddPendingCall(PyRun_SimpleString, buf) from ptrace
  gil_state,     // PyGILState_Ensure + PyRun_SimpleString on a parked thread
  remote_debug,  // PEP 768 (3.14+)
};

struct InjectOutcome {
  InjectMethod method = InjectMethod::pending_call;
  InterpreterInfo info;
  bool confirmed = false;  // is_done returned true
};

const char* method_name(InjectMethod method);

// Makes the target run `bootstrap` (Python source) once, in its main
// interpreter with the GIL held. Exactly once: the source is wrapped in a
// guard keyed on a fresh token, so a pending call that fires after the
// escalation already ran it does nothing; and never after the deadline
// (less the time the agent needs to come up): one that has not run by then
// does nothing when it does. The bootstrap must never raise.
// Nothing is changed in the target when an error is returned before the
// request was queued.
Result<InjectOutcome> inject(int pid, const std::string& bootstrap, const InjectOptions& options);

// inject() without the outcome.
Result<Done> inject_python(int pid, const std::string& bootstrap, const InjectOptions& options);

// The Python source actually queued: `bootstrap` under a once-guard keyed on
// `token`; with `unlink_path`, it removes that file first (PEP 768 script).
// With `expires_at` (boot_clock_seconds()), it does nothing when it runs
// later than that: a bootstrap pyhot stopped waiting for (a main thread
// holding the GIL in C code) must not start an agent nobody asked for when
// that thread gets back to Python.
std::string guarded_bootstrap(const std::string& bootstrap, const std::string& token,
                              const std::string& unlink_path = {}, double expires_at = 0);

// What makes a guarded bootstrap already expired: its expiry's digits as
// zeros, at their offset in `source` (the same length, so it can be written
// over the copy the target holds, or a file it will read); nullopt when it
// has no expiry.
struct ExpiryPatch {
  size_t offset = 0;
  std::string bytes;
};
std::optional<ExpiryPatch> expiry_patch(const std::string& source);

// The clock a bootstrap reads in the target: os.times().elapsed, the
// kernel's clock ticks since boot, the same in every process (and every
// container) on one machine; in seconds.
double boot_clock_seconds();

}  // namespace pyhot::loader::attach
