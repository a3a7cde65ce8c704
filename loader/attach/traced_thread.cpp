#include "loader/attach/traced_thread.hpp"

#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "loader/attach/proc_info.hpp"

namespace pyhot::loader::attach {

namespace {

using Clock = std::chrono::steady_clock;

// syscall; int3 | call *%rax; int3 | int3 int3
constexpr uint64_t k_stub = 0xcccccc'd0ff'cc050fULL;
constexpr uint64_t k_syscall_stub = 0;  // offsets inside the stub
constexpr uint64_t k_call_stub = 3;

std::string errno_text(const char* what, int err) { return std::string(what) + ": " + std::strerror(err); }

// ptrace and process_vm_* take remote addresses and signal numbers as pointers.
void* as_pointer(uint64_t value) {
  return reinterpret_cast<void*>(value);  // NOLINT(performance-no-int-to-ptr)
}

bool is_restart_code(long long rax) {
  // -ERESTARTSYS, -ERESTARTNOINTR, -ERESTARTNOHAND, -ERESTART_RESTARTBLOCK
  return rax == -512 || rax == -513 || rax == -514 || rax == -516;
}

void nap(int round) {
  // Busy targets stop within microseconds; back off for slow ones.
  timespec ts{0, round < 50 ? 20'000 : 1'000'000};
  nanosleep(&ts, nullptr);
}

}  // namespace

Result<TracedThread> TracedThread::seize(int pid, int tid, std::chrono::milliseconds patience) {
  auto deadline = Clock::now() + patience;
  TracedThread thread(pid, tid);
  for (int round = 0;; ++round) {
    if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) == 0) {
      break;
    }
    int err = errno;
    if (err == ESRCH) {
      return make_error(ErrorKind::not_found, "no process " + std::to_string(pid));
    }
    if (err != EPERM) {
      return make_error(ErrorKind::permission_denied, errno_text("ptrace(PTRACE_SEIZE)", err));
    }
    auto status = read_status(pid);
    if (!status) {
      return status.error();
    }
    if (status->tracer_pid == 0) {
      return make_error(ErrorKind::permission_denied, "ptrace(PTRACE_SEIZE): Operation not permitted");
    }
    if (Clock::now() >= deadline) {
      std::string tracer = read_proc_text("/proc/" + std::to_string(status->tracer_pid) + "/comm");
      while (!tracer.empty() && tracer.back() == '\n') {
        tracer.pop_back();
      }
      return make_error(ErrorKind::permission_denied, "process " + std::to_string(pid) + " is already traced by PID " +
                                                          std::to_string(status->tracer_pid) +
                                                          (tracer.empty() ? "" : " (" + tracer + ")"));
    }
    // Another pyhot (or a debugger) holds it; it lets go within milliseconds.
    nap(round + 50);
  }
  thread.m_attached = true;
  if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) {
    int err = errno;
    ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
    thread.m_attached = false;
    return make_error(ErrorKind::internal, errno_text("ptrace(PTRACE_INTERRUPT)", err));
  }
  auto stopped = thread.wait_for_stop(Clock::now() + std::chrono::seconds(2));
  if (!stopped) {
    return stopped.error();
  }
  auto saved = thread.save_state();
  if (!saved) {
    return saved.error();
  }
  return thread;
}

TracedThread::TracedThread(TracedThread&& other) noexcept
    : m_pid(other.m_pid),
      m_tid(other.m_tid),
      m_attached(std::exchange(other.m_attached, false)),
      m_stop(other.m_stop),
      m_regs(other.m_regs),
      m_xstate(std::move(other.m_xstate)),
      m_xstate_is_fpregs(other.m_xstate_is_fpregs),
      m_scratch(std::exchange(other.m_scratch, 0)),
      m_scratch_saved(other.m_scratch_saved),
      m_pending_signal(other.m_pending_signal) {}

TracedThread::~TracedThread() {
  if (m_attached) {
    (void)restore_and_detach();
  }
}

Result<Done> TracedThread::wait_for_stop(Clock::time_point deadline) {
  for (int round = 0;; ++round) {
    int status = 0;
    pid_t got = waitpid(m_tid, &status, __WALL | WNOHANG);
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      m_attached = false;
      return make_error(ErrorKind::not_found, errno_text("waiting for the target thread", errno));
    }
    if (got == m_tid) {
      if (WIFEXITED(status) || WIFSIGNALED(status)) {
        m_attached = false;
        return make_error(ErrorKind::not_found, "process " + std::to_string(m_pid) + " exited");
      }
      if (WIFSTOPPED(status)) {
        int sig = WSTOPSIG(status);
        if ((status >> 16) != PTRACE_EVENT_STOP) {
          if (m_pending_signal != 0) {
            // A second signal: let it through and wait for our stop again.
            ptrace(PTRACE_CONT, m_tid, nullptr, as_pointer(static_cast<uint64_t>(sig)));
            continue;
          }
          // A signal beat the interrupt: hold it and deliver it on detach.
          m_pending_signal = sig;
        }
        return k_done;
      }
    }
    if (Clock::now() >= deadline) {
      return make_error(ErrorKind::timeout,
                        "thread " + std::to_string(m_tid) + " did not stop (uninterruptible sleep?)");
    }
    nap(round);
  }
}

Result<Done> TracedThread::save_state() {
  if (ptrace(PTRACE_GETREGS, m_tid, nullptr, &m_regs) != 0) {
    return make_error(ErrorKind::internal, errno_text("ptrace(PTRACE_GETREGS)", errno));
  }
  m_xstate.assign(size_t{64} * 1024, 0);
  iovec iov{m_xstate.data(), m_xstate.size()};
  if (ptrace(PTRACE_GETREGSET, m_tid, as_pointer(NT_X86_XSTATE), &iov) == 0) {
    m_xstate.resize(iov.iov_len);
  } else {
    m_xstate.assign(sizeof(user_fpregs_struct), 0);
    if (ptrace(PTRACE_GETFPREGS, m_tid, nullptr, m_xstate.data()) != 0) {
      return make_error(ErrorKind::internal, errno_text("ptrace(PTRACE_GETFPREGS)", errno));
    }
    m_xstate_is_fpregs = true;
  }
  m_stop.rip = m_regs.rip;
  m_stop.syscall = static_cast<long>(m_regs.orig_rax);
  m_stop.in_syscall = m_stop.syscall >= 0 && is_restart_code(static_cast<long long>(m_regs.rax));
  return k_done;
}

Result<Done> TracedThread::set_regs(const user_regs_struct& regs) {
  if (ptrace(PTRACE_SETREGS, m_tid, nullptr, &regs) != 0) {
    return make_error(ErrorKind::internal, errno_text("ptrace(PTRACE_SETREGS)", errno));
  }
  return k_done;
}

Result<uint64_t> TracedThread::peek(uint64_t address) {
  errno = 0;
  long word = ptrace(PTRACE_PEEKDATA, m_tid, as_pointer(address), nullptr);
  if (errno != 0) {
    return make_error(ErrorKind::internal, errno_text("ptrace(PTRACE_PEEKDATA)", errno));
  }
  return static_cast<uint64_t>(word);
}

Result<Done> TracedThread::poke(uint64_t address, uint64_t value) {
  if (ptrace(PTRACE_POKEDATA, m_tid, as_pointer(address), as_pointer(value)) != 0) {
    return make_error(ErrorKind::internal, errno_text("ptrace(PTRACE_POKEDATA)", errno));
  }
  return k_done;
}

Result<Done> TracedThread::install_scratch(uint64_t address) {
  auto original = peek(address);
  if (!original) {
    return original.error();
  }
  m_scratch_saved = *original;
  auto written = poke(address, k_stub);
  if (!written) {
    return written.error();
  }
  m_scratch = address;
  return k_done;
}

Result<Done> TracedThread::write_memory(uint64_t address, const std::string& bytes) {
  iovec local{const_cast<char*>(bytes.data()), bytes.size()};
  iovec remote{as_pointer(address), bytes.size()};
  if (process_vm_writev(m_pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(bytes.size())) {
    return k_done;
  }
  // Fallback (process_vm_writev can be filtered): word by word.
  for (size_t i = 0; i < bytes.size(); i += 8) {
    uint64_t word = 0;
    if (bytes.size() - i < 8) {
      auto old = peek(address + i);
      if (!old) {
        return old.error();
      }
      word = *old;
    }
    std::memcpy(&word, bytes.data() + i, std::min<size_t>(8, bytes.size() - i));
    auto ok = poke(address + i, word);
    if (!ok) {
      return ok.error();
    }
  }
  return k_done;
}

Result<Done> TracedThread::run_until_trap(uint64_t expected_rip, std::optional<Clock::time_point> deadline) {
  int deliver = 0;
  for (int round = 0;; ++round) {
    if (ptrace(PTRACE_CONT, m_tid, nullptr, as_pointer(static_cast<uint64_t>(deliver))) != 0) {
      return make_error(ErrorKind::internal, errno_text("ptrace(PTRACE_CONT)", errno));
    }
    deliver = 0;
    int status = 0;
    for (int poll = 0;; ++poll) {
      pid_t got = waitpid(m_tid, &status, __WALL | WNOHANG);
      if (got == m_tid) {
        break;
      }
      if (got < 0 && errno != EINTR) {
        m_attached = false;
        return make_error(ErrorKind::not_found, errno_text("waiting for the target thread", errno));
      }
      if (deadline && Clock::now() >= *deadline) {
        // Only reached for calls that cannot hold a lock: stop and abandon it.
        ptrace(PTRACE_INTERRUPT, m_tid, nullptr, nullptr);
        auto stopped = wait_for_stop(Clock::now() + std::chrono::seconds(2));
        if (!stopped) {
          return stopped.error();
        }
        return make_error(ErrorKind::timeout, "the injected call did not return in time");
      }
      nap(poll);
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      m_attached = false;
      return make_error(ErrorKind::not_found, "process " + std::to_string(m_pid) + " exited during the call");
    }
    int sig = WSTOPSIG(status);
    if ((status >> 16) == PTRACE_EVENT_STOP) {
      continue;  // a late interrupt or a group stop: keep going
    }
    if (sig == SIGTRAP) {
      user_regs_struct regs{};
      if (ptrace(PTRACE_GETREGS, m_tid, nullptr, &regs) != 0) {
        return make_error(ErrorKind::internal, errno_text("ptrace(PTRACE_GETREGS)", errno));
      }
      if (regs.rip == expected_rip) {
        return k_done;
      }
      deliver = sig;  // not ours
      continue;
    }
    if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGSYS) {
      // Our call faulted (or seccomp refused the syscall): undo, do not deliver.
      return make_error(ErrorKind::refused, std::string("the injected call raised ") + strsignal(sig) +
                                                (sig == SIGSYS ? " (seccomp forbids it)" : ""));
    }
    deliver = sig;  // the program's own signal: its handler runs on top of us
  }
}

Result<uint64_t> TracedThread::remote_syscall(long number, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                                              uint64_t a4, uint64_t a5) {
  user_regs_struct regs = m_regs;
  regs.rip = m_scratch + k_syscall_stub;
  regs.rax = static_cast<uint64_t>(number);
  regs.orig_rax = ~uint64_t{0};  // no syscall restart on resume
  regs.rdi = a0;
  regs.rsi = a1;
  regs.rdx = a2;
  regs.r10 = a3;
  regs.r8 = a4;
  regs.r9 = a5;
  auto set = set_regs(regs);
  if (!set) {
    return set.error();
  }
  auto ran = run_until_trap(m_scratch + k_syscall_stub + 3, Clock::now() + std::chrono::seconds(2));
  if (!ran) {
    return ran.error();
  }
  if (ptrace(PTRACE_GETREGS, m_tid, nullptr, &regs) != 0) {
    return make_error(ErrorKind::internal, errno_text("ptrace(PTRACE_GETREGS)", errno));
  }
  return regs.rax;
}

Result<uint64_t> TracedThread::remote_call(uint64_t function, uint64_t a0, uint64_t a1,
                                           std::optional<std::chrono::milliseconds> limit) {
  user_regs_struct regs = m_regs;
  regs.rip = m_scratch + k_call_stub;
  regs.rax = function;
  regs.orig_rax = ~uint64_t{0};
  regs.rdi = a0;
  regs.rsi = a1;
  regs.rsp = (m_regs.rsp - 256) & ~uint64_t{15};  // past the red zone, ABI-aligned
  auto set = set_regs(regs);
  if (!set) {
    return set.error();
  }
  std::optional<Clock::time_point> deadline;
  if (limit) {
    deadline = Clock::now() + *limit;
  }
  auto ran = run_until_trap(m_scratch + k_call_stub + 3, deadline);
  if (!ran) {
    return ran.error();
  }
  if (ptrace(PTRACE_GETREGS, m_tid, nullptr, &regs) != 0) {
    return make_error(ErrorKind::internal, errno_text("ptrace(PTRACE_GETREGS)", errno));
  }
  return regs.rax;
}

Result<Done> TracedThread::restore_and_detach(bool interrupt_wait) {
  if (!m_attached) {
    return k_done;
  }
  std::string failure;
  if (m_scratch != 0) {
    if (!poke(m_scratch, m_scratch_saved)) {
      failure = "restoring the code at the entry point failed";
    }
    m_scratch = 0;
  }
  if (m_xstate_is_fpregs) {
    ptrace(PTRACE_SETFPREGS, m_tid, nullptr, m_xstate.data());
  } else {
    iovec iov{m_xstate.data(), m_xstate.size()};
    ptrace(PTRACE_SETREGSET, m_tid, as_pointer(NT_X86_XSTATE), &iov);
  }
  user_regs_struct regs = m_regs;
  if (interrupt_wait && m_stop.in_syscall && regs.rax != static_cast<uint64_t>(-513)) {
    regs.rax = static_cast<uint64_t>(-EINTR);
  }
  if (!set_regs(regs) && failure.empty()) {
    failure = "restoring registers failed";
  }
  ptrace(PTRACE_DETACH, m_tid, nullptr, as_pointer(static_cast<uint64_t>(m_pending_signal)));
  m_attached = false;
  if (!failure.empty()) {
    return make_error(ErrorKind::internal, failure);
  }
  return k_done;
}

}  // namespace pyhot::loader::attach
