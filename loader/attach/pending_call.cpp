#include "loader/attach/pending_call.hpp"

#include <sys/mman.h>

#include <cstring>

#include "loader/attach/proc_info.hpp"
#include "loader/attach/ptrace_permission.hpp"
#include "loader/attach/traced_thread.hpp"

namespace pyhot::loader::attach {

namespace {

using std::chrono::milliseconds;

constexpr long k_sys_mmap = 9;
constexpr long k_sys_munmap = 11;

std::string pid_text(int pid) { return "process " + std::to_string(pid); }

// Runs the bootstrap on `thread` (parked in a non-futex syscall, GIL released)
// through PyGILState_Ensure. Returns false when the thread turned out to hold
// the GIL (a C extension blocking without releasing it): then nothing ran.
Result<bool> run_with_gil_state(TracedThread& thread, const InterpreterInfo& info, uint64_t source) {
  uint64_t errno_address = 0;
  uint64_t errno_word = 0;
  if (info.errno_location != 0) {
    auto address = thread.remote_call(info.errno_location, 0, 0, milliseconds(1000));
    if (address) {
      auto word = thread.peek(*address);
      if (word) {
        errno_address = *address;
        errno_word = *word;
      }
    }
  }
  // No time limit from here: these calls take locks and must finish.
  auto state = thread.remote_call(info.gil_state_ensure);
  if (!state) {
    return state.error();
  }
  bool ran = false;
  if ((*state & 0xffffffff) == 0) {  // PyGILState_LOCKED: it already held the GIL
    auto released = thread.remote_call(info.gil_state_release, 0);
    if (!released) {
      return released.error();
    }
  } else {
    auto result = thread.remote_call(info.run_simple_string, source);
    if (!result) {
      return result.error();
    }
    auto released = thread.remote_call(info.gil_state_release, 1);
    if (!released) {
      return released.error();
    }
    ran = true;
  }
  if (errno_address != 0) {
    auto now = thread.peek(errno_address);
    if (now) {
      uint64_t merged = (*now & ~uint64_t{0xffffffff}) | (errno_word & 0xffffffff);
      (void)thread.poke(errno_address, merged);
    }
  }
  return ran;
}

bool parked_outside_futex(const StopState& stop) { return stop.in_syscall && is_parking_syscall(stop.syscall); }

}  // namespace

Result<InjectOutcome> inject_with_ptrace(const InterpreterInfo& info, const std::string& bootstrap,
                                         const std::string& token, const InjectOptions& options,
                                         InjectClock::time_point deadline) {
  int pid = info.pid;
  if (info.add_pending_call == 0 || info.run_simple_string == 0) {
    return make_error(ErrorKind::not_python,
                      "the Python runtime of " + pid_text(pid) + " exports no Py_AddPendingCall/PyRun_SimpleString");
  }
  auto entry = read_entry_point(pid);
  if (!entry) {
    return entry.error();
  }
  std::string source = guarded_bootstrap(bootstrap, token);
  source.push_back('\0');
  uint64_t page_size = (source.size() + 4095) & ~uint64_t{4095};

  InjectOutcome outcome;
  outcome.method = InjectMethod::pending_call;
  outcome.info = info;
  bool escalated = false;
  {
    SignalShield shield;
    auto seized = TracedThread::seize(pid, pid, remaining(deadline));
    if (!seized) {
      if (seized.error().kind == ErrorKind::permission_denied) {
        auto status = read_status(pid);
        if (status && status->tracer_pid == 0) {
          return explain_denial(pid, *status);
        }
      }
      return seized.error();
    }
    TracedThread& main = *seized;
    auto installed = main.install_scratch(*entry);
    if (!installed) {
      return installed.error().with_context("writing the call stub");
    }
    // Trivial readers of _PyRuntime; a thread stopped anywhere can run them.
    if (info.is_initialized != 0) {
      auto initialized = main.remote_call(info.is_initialized, 0, 0, milliseconds(1000));
      if (!initialized) {
        return initialized.error().with_context("calling Py_IsInitialized");
      }
      if ((*initialized & 0xffffffff) == 0) {
        return make_error(ErrorKind::refused,
                          "the interpreter of " + pid_text(pid) + " is not initialized (starting up or finalizing)");
      }
    }
    if (info.is_finalizing != 0) {
      auto finalizing = main.remote_call(info.is_finalizing, 0, 0, milliseconds(1000));
      if (!finalizing) {
        return finalizing.error().with_context("calling Py_IsFinalizing");
      }
      if ((*finalizing & 0xffffffff) != 0) {
        return make_error(ErrorKind::refused, pid_text(pid) + " is finalizing its interpreter");
      }
    }
    auto page = main.remote_syscall(k_sys_mmap, 0, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                    static_cast<uint64_t>(-1), 0);
    if (!page) {
      return page.error().with_context("allocating memory in " + pid_text(pid));
    }
    if (*page > static_cast<uint64_t>(-4096)) {
      return make_error(ErrorKind::refused, "mmap in " + pid_text(pid) + " failed: " +
                                                std::strerror(static_cast<int>(-static_cast<int64_t>(*page))));
    }
    auto unmap = [&] { (void)main.remote_syscall(k_sys_munmap, *page, page_size); };
    auto copied = main.write_memory(*page, source);
    if (!copied) {
      unmap();
      return copied.error();
    }
    // The lock it takes is only ever held for a few instructions.
    auto queued = main.remote_call(info.add_pending_call, info.run_simple_string, *page, milliseconds(2000));
    if (!queued) {
      if (queued.error().kind != ErrorKind::timeout) {
        unmap();
      }
      return queued.error().with_context("calling Py_AddPendingCall");
    }
    if ((*queued & 0xffffffff) != 0) {
      unmap();
      return make_error(ErrorKind::refused, "the pending-call queue of " + pid_text(pid) + " is full; try again");
    }
    // From here the request is queued: the page must stay (it is the
    // call's argument) and failures are reported, not undone.
    StopState stop = main.stop_state();
    if (options.escalate && parked_outside_futex(stop) && info.gil_state_ensure != 0 && info.gil_state_release != 0) {
      auto ran = run_with_gil_state(main, info, *page);
      if (!ran) {
        return ran.error().with_context("running the bootstrap on the main thread");
      }
      escalated = *ran;
    }
    bool nudge = !escalated && options.interrupt_futex_wait && stop.in_syscall && stop.syscall == k_sys_futex;
    auto restored = main.restore_and_detach(nudge);
    if (!restored) {
      return restored.error();
    }
  }
  if (escalated) {
    outcome.method = InjectMethod::gil_state;
  }
  if (options.is_done) {
    if (!wait_until_done(options, deadline)) {
      long now = read_thread_syscall(pid, pid).value_or(-1);
      return make_error(ErrorKind::timeout,
                        "the bootstrap is queued in " + pid_text(pid) + " but has not run: its main thread is " +
                            (now == -1 ? std::string("running C code that does not return to Python")
                                       : "blocked in " + syscall_name(now)) +
                            "; it runs when that returns");
    }
    outcome.confirmed = true;
  }
  return outcome;
}

}  // namespace pyhot::loader::attach
