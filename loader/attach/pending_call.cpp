#include "loader/attach/pending_call.hpp"

#include <sys/mman.h>

#include <cstring>
#include <thread>

#include "loader/attach/proc_info.hpp"
#include "loader/attach/ptrace_permission.hpp"
#include "loader/attach/remote_memory.hpp"
#include "loader/attach/traced_thread.hpp"

namespace pyhot::loader::attach {

namespace {

using std::chrono::milliseconds;

constexpr long k_sys_mmap = 9;
constexpr long k_sys_munmap = 11;
constexpr long k_sys_mprotect = 10;
// The page: the escalation routine, then the bootstrap source.
constexpr uint64_t k_source_offset = 128;

std::string pid_text(int pid) { return "process " + std::to_string(pid); }

void append_u64(std::string& code, uint64_t value) { code.append(reinterpret_cast<const char*>(&value), 8); }

// Machine code for `state = PyGILState_Ensure(); if (state) PyRun_SimpleString(rdi);
// PyGILState_Release(state); return state;` as one call, so a pyhot that dies
// between its steps can never leave the thread holding the GIL.
std::string gil_state_routine(const InterpreterInfo& info) {
  std::string code;
  code += "\x53\x41\x54\x48\x83\xec\x08";  // push %rbx; push %r12; sub $8,%rsp (aligns the calls)
  code += "\x49\x89\xfc";                  // mov %rdi,%r12
  code += "\x48\xb8";                      // movabs $PyGILState_Ensure,%rax
  append_u64(code, info.gil_state_ensure);
  code += "\xff\xd0\x89\xc3\x85\xc0\x74\x0f";  // call *%rax; mov %eax,%ebx; test; je +15 (LOCKED: run nothing)
  code += "\x4c\x89\xe7\x48\xb8";              // mov %r12,%rdi; movabs $PyRun_SimpleString,%rax
  append_u64(code, info.run_simple_string);
  code += "\xff\xd0";          // call *%rax
  code += "\x89\xdf\x48\xb8";  // mov %ebx,%edi; movabs $PyGILState_Release,%rax
  append_u64(code, info.gil_state_release);
  code += "\xff\xd0\x89\xd8";                  // call *%rax; mov %ebx,%eax
  code += "\x48\x83\xc4\x08\x41\x5c\x5b\xc3";  // add $8,%rsp; pop %r12; pop %rbx; ret
  return code;
}

// Runs the bootstrap on `thread` (parked in a non-futex syscall, GIL released)
// through the routine at `routine`. Returns false when the thread turned out
// to hold the GIL (a C extension blocking without releasing it): then nothing ran.
Result<bool> run_with_gil_state(TracedThread& thread, const InterpreterInfo& info, uint64_t routine, uint64_t source) {
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
  // No time limit: the routine takes locks and must finish.
  auto state = thread.remote_call(routine, source);
  if (!state) {
    return state.error();
  }
  if (errno_address != 0) {
    auto now = thread.peek(errno_address);
    if (now) {
      uint64_t merged = (*now & ~uint64_t{0xffffffff}) | (errno_word & 0xffffffff);
      (void)thread.poke(errno_address, merged);
    }
  }
  return (*state & 0xffffffff) != 0;  // 0 is PyGILState_LOCKED
}

bool parked_outside_futex(const StopState& stop) { return stop.in_syscall && is_parking_syscall(stop.syscall); }

// Trivial readers of _PyRuntime; a thread stopped anywhere can run them.
Result<Done> check_interpreter_state(TracedThread& main, const InterpreterInfo& info) {
  if (info.is_initialized != 0) {
    auto initialized = main.remote_call(info.is_initialized, 0, 0, milliseconds(1000));
    if (!initialized) {
      return initialized.error().with_context("calling Py_IsInitialized");
    }
    if ((*initialized & 0xffffffff) == 0) {
      return make_error(ErrorKind::refused,
                        "the interpreter of " + pid_text(info.pid) + " is not initialized (starting up or finalizing)");
    }
  }
  if (info.is_finalizing != 0) {
    auto finalizing = main.remote_call(info.is_finalizing, 0, 0, milliseconds(1000));
    if (!finalizing) {
      return finalizing.error().with_context("calling Py_IsFinalizing");
    }
    if ((*finalizing & 0xffffffff) != 0) {
      return make_error(ErrorKind::refused, pid_text(info.pid) + " is finalizing its interpreter");
    }
  }
  return k_done;
}

struct InjectedPage {
  uint64_t address = 0;
  uint64_t size = 0;
  bool executable = false;  // the escalation routine may run
};

// One page holding the escalation routine and the source, read-only and
// executable once written.
Result<InjectedPage> place_page(TracedThread& main, const InterpreterInfo& info, const std::string& source) {
  std::string contents = gil_state_routine(info);
  contents.resize(k_source_offset, '\xcc');
  contents += source;
  InjectedPage page;
  page.size = (contents.size() + 4095) & ~uint64_t{4095};
  auto mapped = main.remote_syscall(k_sys_mmap, 0, page.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                    static_cast<uint64_t>(-1), 0);
  if (!mapped) {
    return mapped.error().with_context("allocating memory in " + pid_text(info.pid));
  }
  if (*mapped > static_cast<uint64_t>(-4096)) {
    return make_error(ErrorKind::refused, "mmap in " + pid_text(info.pid) + " failed: " +
                                              std::strerror(static_cast<int>(-static_cast<int64_t>(*mapped))));
  }
  page.address = *mapped;
  auto copied = main.write_memory(page.address, contents);
  if (!copied) {
    (void)main.remote_syscall(k_sys_munmap, page.address, page.size);
    return copied.error();
  }
  // Where W^X policy refuses, the pending call still works; only the escalation is lost.
  auto sealed = main.remote_syscall(k_sys_mprotect, page.address, page.size, PROT_READ | PROT_EXEC);
  page.executable = sealed && *sealed == 0;
  return page;
}

struct Queued {
  bool escalated = false;       // the escalation ran the bootstrap
  uint64_t source_address = 0;  // the source the pending call will run
};

// Stopped, queued, escalated if parked, restored.
Result<Queued> queue_on_main_thread(const InterpreterInfo& info, const std::string& source, uint64_t entry,
                                    const InjectOptions& options, InjectClock::time_point deadline) {
  int pid = info.pid;
  SignalShield shield;
  StopWatchdog watchdog(pid);
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
  if (auto installed = main.install_scratch(entry); !installed) {
    return installed.error().with_context("writing the call stub");
  }
  if (auto checked = check_interpreter_state(main, info); !checked) {
    return checked.error();
  }
  auto page = place_page(main, info, source);
  if (!page) {
    return page.error();
  }
  uint64_t source_address = page->address + k_source_offset;
  // The lock it takes is only ever held for a few instructions.
  auto queued = main.remote_call(info.add_pending_call, info.run_simple_string, source_address, milliseconds(2000));
  if (!queued || (*queued & 0xffffffff) != 0) {
    if (queued || queued.error().kind != ErrorKind::timeout) {
      (void)main.remote_syscall(k_sys_munmap, page->address, page->size);
    }
    if (!queued) {
      return queued.error().with_context("calling Py_AddPendingCall");
    }
    return make_error(ErrorKind::refused, "the pending-call queue of " + pid_text(pid) + " is full; try again");
  }
  // From here the request is queued: the page must stay (it is the
  // call's argument) and failures are reported, not undone.
  StopState stop = main.stop_state();
  bool escalated = false;
  if (options.escalate && page->executable && parked_outside_futex(stop) && info.gil_state_ensure != 0 &&
      info.gil_state_release != 0) {
    auto ran = run_with_gil_state(main, info, page->address, source_address);
    if (!ran) {
      return ran.error().with_context("running the bootstrap on the main thread");
    }
    escalated = *ran;
  }
  bool nudge = !escalated && options.interrupt_futex_wait && stop.in_syscall && stop.syscall == k_sys_futex;
  if (auto restored = main.restore_and_detach(nudge); !restored) {
    return restored.error();
  }
  return Queued{escalated, source_address};
}

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
  std::string source = guarded_bootstrap(bootstrap, token, {}, bootstrap_expiry(deadline));
  source.push_back('\0');
  auto queued = queue_on_main_thread(info, source, *entry, options, deadline);
  if (!queued) {
    return queued.error();
  }
  InjectOutcome outcome;
  outcome.method = queued->escalated ? InjectMethod::gil_state : InjectMethod::pending_call;
  outcome.info = info;
  if (options.is_done) {
    if (auto end = wait_until_done(pid, options, deadline); end != WaitEnd::done) {
      // Stopped after the check before the attach (kill -STOP, a debugger
      // or a job-control stop while pyhot waited): no thread can run it
      // until it is resumed, so pyhot stops waiting now, and expires the
      // queued source itself (its expiry written as 0 in the target's
      // page) so that it does nothing when it runs after the resume.
      bool stopped = end == WaitEnd::stopped;
      if (!stopped) {
        auto status = read_status(pid);
        stopped = status && status->state == 'T';
      }
      if (stopped) {
        auto patch = expiry_patch(source);
        if (end == WaitEnd::stopped &&
            !(patch && write_remote_forced(pid, queued->source_address + patch->offset, patch->bytes))) {
          // Not expired by hand: it is once its own expiry has passed.
          std::this_thread::sleep_until(deadline);
        }
        return stopped_after_queuing(pid, "the bootstrap is queued in " + pid_text(pid));
      }
      long now = read_thread_syscall(pid, pid).value_or(-1);
      return make_error(ErrorKind::timeout,
                        "the bootstrap is queued in " + pid_text(pid) + " but has not run: its main thread is " +
                            (now == -1 ? std::string("running C code that does not return to Python")
                                       : "blocked in " + syscall_name(now)) +
                            "; it expired: it does nothing when that returns");
    }
    outcome.confirmed = true;
  }
  return outcome;
}

}  // namespace pyhot::loader::attach
