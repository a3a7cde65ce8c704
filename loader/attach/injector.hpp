// Starts the agent inside a Python process that was not started with pyhot:
// finds the interpreter, and makes it run a bootstrap at a safe point.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "util/result.hpp"

namespace pyhot::loader::attach {

struct PythonVersion {
  int major = 0;
  int minor = 0;
  int micro = -1;            // -1 when only major.minor is known (soname / file name)
  std::string text() const;  // "3.11.7" or "3.9"
  bool at_least(int want_major, int want_minor) const {
    return major > want_major || (major == want_major && minor >= want_minor);
  }
};

// What pyhot found in a process: for `pyhot ps`, diagnostics and injection.
struct InterpreterInfo {
  int pid = 0;
  std::string path;             // the file holding the runtime, as the target sees it
  std::string host_path;        // how pyhot opened it (/proc/PID/root/...)
  bool shared_library = false;  // libpython3.X.so, not a statically linked executable
  PythonVersion version;
  std::string version_source;  // "debug offsets", "Py_Version", "soname", "file name"
  uint64_t load_bias = 0;
  // Run-time addresses in the target, 0 when absent.
  uint64_t add_pending_call = 0;
  uint64_t run_simple_string = 0;
  uint64_t gil_state_ensure = 0;
  uint64_t gil_state_release = 0;
  uint64_t is_initialized = 0;
  uint64_t is_finalizing = 0;                    // _Py_IsFinalizing (3.8-3.12) or Py_IsFinalizing (3.13+)
  uint64_t errno_location = 0;                   // libc's __errno_location, to keep errno intact
  uint64_t runtime = 0;                          // _PyRuntime
  bool has_debug_offsets = false;                // "xdebugpy" cookie (3.13+)
  std::optional<bool> remote_debugging_enabled;  // 3.14+ only
  long main_thread_syscall = -1;                 // from /proc; -1 running
};

// Reads the target's maps and files; changes nothing in the target.
Result<InterpreterInfo> inspect_interpreter(int pid);

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
// escalation already ran it does nothing. The bootstrap must never raise.
// Nothing is changed in the target when an error is returned before the
// request was queued.
Result<InjectOutcome> inject(int pid, const std::string& bootstrap, const InjectOptions& options);

// inject() without the outcome.
Result<Done> inject_python(int pid, const std::string& bootstrap, const InjectOptions& options);

// The Python source actually queued: `bootstrap` under a once-guard keyed on
// `token`; with `unlink_path`, it removes that file first (PEP 768 script).
std::string guarded_bootstrap(const std::string& bootstrap, const std::string& token,
                              const std::string& unlink_path = {});

// Version from a soname or file name: "libpython3.11.so.1.0", "python3.9" -> 3.11 / 3.9.
std::optional<PythonVersion> version_from_name(const std::string& name);
// Version from a PY_VERSION_HEX value (Py_Version, debug offsets).
PythonVersion version_from_hex(uint64_t hex);

}  // namespace pyhot::loader::attach
