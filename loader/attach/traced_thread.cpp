#include "loader/attach/traced_thread.hpp"

#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <thread>
#include <utility>

#include "loader/attach/proc_info.hpp"

namespace pyhot::loader::attach {

namespace {

using Clock = std::chrono::steady_clock;

constexpr long k_sys_poll_family_ppoll = 271;
constexpr long k_sys_select = 23;
constexpr long k_sys_pselect6 = 270;
constexpr long k_sys_restart_syscall = 219;
constexpr int k_syscall_stop = SIGTRAP | 0x80;  // PTRACE_O_TRACESYSGOOD
constexpr long k_erestart_restartblock = -516;

std::string errno_text(const char* what, int err) { return std::string(what) + ": " + std::strerror(err); }

// ptrace and process_vm_* take remote addresses and signal numbers as pointers.
void* as_pointer(uint64_t value) {
  return reinterpret_cast<void*>(value);  // NOLINT(performance-no-int-to-ptr)
}

bool is_restart_code(long long rax) {
  // -ERESTARTSYS, -ERESTARTNOINTR, -ERESTARTNOHAND, -ERESTART_RESTARTBLOCK
  return rax == -512 || rax == -513 || rax == -514 || rax == -516;
}

bool is_fault(int sig) { return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGSYS; }

// The program's entry point as the C library writes it ([endbr64] xor
// %ebp,%ebp for glibc, xor %rbp,%rbp for musl), or a stub an earlier pyhot
// left there, whole or in part (it writes a word at a time, first word
// first): then it is _start, at least CallStub::k_size bytes long.
bool looks_like_entry_point(std::string_view bytes) {
  std::string_view stub(reinterpret_cast<const char*>(CallStub::k_code), CallStub::k_size);
  if (bytes.substr(0, 8) == stub.substr(0, 8)) {
    return true;
  }
  size_t at = bytes.substr(0, 4) == "\xf3\x0f\x1e\xfa" ? 4 : 0;
  return bytes.substr(at, 2) == "\x31\xed" || bytes.substr(at, 3) == "\x48\x31\xed";
}

void nap(int round) {
  // Busy targets stop within microseconds; back off for slow ones.
  timespec ts{0, round < 50 ? 20'000 : 1'000'000};
  nanosleep(&ts, nullptr);
}

}  // namespace

// call *%rax | xchg %rax,%rdi | push $39; pop %rax | syscall (getpid) |
// pop rax rcx rdx rsi rdi r8 r9 r10 r11 | popfq | ret $128 |
// call *%rax; pop %rcx; jmp to the xchg (the padded entry)
const unsigned char CallStub::k_code[CallStub::k_size] = {
    0xff, 0xd0, 0x48, 0x97, 0x6a, 0x27, 0x58, 0x0f, 0x05, 0x58, 0x59, 0x5a, 0x5e, 0x5f, 0x41, 0x58,
    0x41, 0x59, 0x41, 0x5a, 0x41, 0x5b, 0x9d, 0xc2, 0x80, 0x00, 0xff, 0xd0, 0x59, 0xeb, 0xe3};

std::string call_stub_save_area(const user_regs_struct& regs) {
  uint64_t rax = regs.rax;
  uint64_t rip = regs.rip;
  auto code = static_cast<long long>(regs.rax);
  if (static_cast<long long>(regs.orig_rax) >= 0 && is_restart_code(code)) {
    rip -= 2;  // back onto the syscall instruction, as the kernel restarts it
    rax = code == k_erestart_restartblock ? k_sys_restart_syscall : regs.orig_rax;
  }
  const uint64_t words[] = {rax,     regs.rcx, regs.rdx, regs.rsi,    regs.rdi, regs.r8,
                            regs.r9, regs.r10, regs.r11, regs.eflags, rip};
  static_assert(sizeof words == CallStub::k_save_below_rsp - 128);
  return std::string(reinterpret_cast<const char*>(words), sizeof words);
}

Result<TracedThread> TracedThread::seize(int pid, int tid, std::chrono::milliseconds patience) {
  auto deadline = Clock::now() + patience;
  TracedThread thread(pid, tid);
  int untraced_refusals = 0;
  for (int round = 0;; ++round) {
    // No PTRACE_O_EXITKILL: if pyhot dies, the target must live on.
    if (ptrace(PTRACE_SEIZE, tid, nullptr, as_pointer(PTRACE_O_TRACESYSGOOD)) == 0) {
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
      // Another tracer may have let go between our SEIZE and this read:
      // only a refusal that repeats while nobody traces it is a real one.
      if (++untraced_refusals < 3) {
        continue;
      }
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
  // A thread in uninterruptible sleep (a page-in under heavy I/O) stops
  // when it leaves it; nothing of it is held meanwhile, so the whole attach
  // budget may be waited (2 s ran out on a loaded machine).
  auto stopped = thread.wait_for_stop(std::max(Clock::now() + std::chrono::seconds(2), deadline));
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
      m_scratch_saved(std::move(other.m_scratch_saved)),
      m_save_area(other.m_save_area),
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
  m_stop.stopped_at = Clock::now();
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
  if (m_regs.rsp % 8 != 0) {
    return make_error(ErrorKind::refused, "the thread's stack pointer is not aligned; not touching it");
  }
  std::string original;
  for (uint64_t offset = 0; offset < CallStub::k_size; offset += 8) {
    auto word = peek(address + offset);
    if (!word) {
      return word.error();
    }
    original.append(reinterpret_cast<const char*>(&*word), 8);
  }
  if (!looks_like_entry_point(original)) {
    return make_error(ErrorKind::refused,
                      "the program's entry point is not a C library _start; no room for the call stub");
  }
  // Below the red zone: nothing of the program's lives there.
  uint64_t save_area = m_regs.rsp - CallStub::k_save_below_rsp;
  auto saved = write_memory(save_area, call_stub_save_area(m_regs));
  if (!saved) {
    return saved.error().with_context("writing the save area on the target's stack");
  }
  std::string code = original;
  code.replace(0, CallStub::k_size, reinterpret_cast<const char*>(CallStub::k_code), CallStub::k_size);
  m_scratch = address;
  m_scratch_saved = original;
  m_save_area = save_area;
  for (uint64_t offset = 0; offset < code.size(); offset += 8) {
    uint64_t word = 0;
    std::memcpy(&word, code.data() + offset, 8);
    if (auto written = poke(address + offset, word); !written) {
      return written.error();
    }
  }
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

Result<Done> TracedThread::resume_syscall(int signal) {
  if (ptrace(PTRACE_SYSCALL, m_tid, nullptr, as_pointer(static_cast<uint64_t>(signal))) != 0) {
    return make_error(ErrorKind::internal, errno_text("ptrace(PTRACE_SYSCALL)", errno));
  }
  return k_done;
}

// Runs the thread until it is back in the stub, after the stub's syscall:
// the syscall's entry stop, then its exit stop. The thread is stopped at
// syscall stops only, so a program's own syscalls inside a call cost a stop
// each, and a pyhot that dies leaves it running into the stub's restore.
Result<Done> TracedThread::run_to_stub(std::optional<Clock::time_point> deadline) {
  const uint64_t stub_return = m_scratch + CallStub::k_return;
  int deliver = 0;
  bool entered = false;
  while (true) {
    if (auto resumed = resume_syscall(deliver); !resumed) {
      return resumed;
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
    if (sig == k_syscall_stop) {
      user_regs_struct regs{};
      if (ptrace(PTRACE_GETREGS, m_tid, nullptr, &regs) != 0) {
        return make_error(ErrorKind::internal, errno_text("ptrace(PTRACE_GETREGS)", errno));
      }
      if (regs.rip == stub_return) {
        if (entered) {
          return k_done;
        }
        entered = true;
      }
      continue;
    }
    if ((status >> 16) == PTRACE_EVENT_STOP) {
      continue;  // a late interrupt or a group stop: keep going
    }
    if (is_fault(sig)) {
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
  regs.rip = m_scratch + CallStub::k_syscall;
  regs.rax = static_cast<uint64_t>(number);
  regs.orig_rax = ~uint64_t{0};  // no syscall restart on resume
  regs.rsp = m_save_area;
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
  auto ran = run_to_stub(Clock::now() + std::chrono::seconds(2));
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
  // The call must see a 16-byte aligned stack; the stub's restore pops from the save area.
  bool aligned = m_save_area % 16 == 0;
  regs.rip = m_scratch + (aligned ? CallStub::k_call_aligned : CallStub::k_call_padded);
  regs.rsp = aligned ? m_save_area : m_save_area - 8;
  regs.rax = function;
  regs.orig_rax = ~uint64_t{0};
  regs.rdi = a0;
  regs.rsi = a1;
  auto set = set_regs(regs);
  if (!set) {
    return set.error();
  }
  std::optional<Clock::time_point> deadline;
  if (limit) {
    deadline = Clock::now() + *limit;
  }
  auto ran = run_to_stub(deadline);
  if (!ran) {
    return ran.error();
  }
  if (ptrace(PTRACE_GETREGS, m_tid, nullptr, &regs) != 0) {
    return make_error(ErrorKind::internal, errno_text("ptrace(PTRACE_GETREGS)", errno));
  }
  return regs.rdi;  // the stub moved the return value there before its syscall
}

Result<Done> TracedThread::take_back_held_time() {
  long number = m_stop.syscall;
  if (!m_stop.in_syscall || (number != k_sys_select && number != k_sys_pselect6 && number != k_sys_poll_family_ppoll)) {
    return k_done;
  }
  // These write the time left into the caller's struct when interrupted and
  // restart from it: the time the thread was held would be waited again.
  uint64_t pointer = number == k_sys_poll_family_ppoll ? m_regs.rdx : m_regs.r8;
  if (pointer == 0) {
    return k_done;
  }
  auto seconds = peek(pointer);
  auto fraction = peek(pointer + 8);
  if (!seconds || !fraction) {
    return k_done;  // not ours to fix; the call restarts as the kernel left it
  }
  int64_t unit = number == k_sys_select ? 1'000 : 1;  // timeval: microseconds
  int64_t left = static_cast<int64_t>(*seconds) * 1'000'000'000 + static_cast<int64_t>(*fraction) * unit;
  int64_t held = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - m_stop.stopped_at).count();
  left = std::max<int64_t>(0, left - held);
  auto written = poke(pointer, static_cast<uint64_t>(left / 1'000'000'000));
  if (written) {
    written = poke(pointer + 8, static_cast<uint64_t>((left % 1'000'000'000) / unit));
  }
  return written;
}

Result<Done> TracedThread::restore_and_detach(bool interrupt_wait) {
  if (!m_attached) {
    return k_done;
  }
  std::string failure;
  user_regs_struct regs = m_regs;
  if (interrupt_wait && m_stop.in_syscall && regs.rax != static_cast<uint64_t>(-513)) {
    regs.rax = static_cast<uint64_t>(-EINTR);
    regs.orig_rax = ~uint64_t{0};
  } else {
    (void)take_back_held_time();
  }
  if (regs.orig_rax != ~uint64_t{0} && m_pending_signal == 0) {
    // The thread may be in a syscall-exit stop, where the kernel restarts
    // nothing: resume it the way a restart would (the stub's save area).
    std::string words = call_stub_save_area(m_regs);
    std::memcpy(&regs.rax, words.data(), 8);
    std::memcpy(&regs.rip, words.data() + 80, 8);
    regs.orig_rax = ~uint64_t{0};
  }
  // Registers first: from here an abandoned thread resumes as it was.
  if (!set_regs(regs)) {
    failure = "restoring registers failed";
  }
  if (m_xstate_is_fpregs) {
    ptrace(PTRACE_SETFPREGS, m_tid, nullptr, m_xstate.data());
  } else {
    iovec iov{m_xstate.data(), m_xstate.size()};
    ptrace(PTRACE_SETREGSET, m_tid, as_pointer(NT_X86_XSTATE), &iov);
  }
  if (m_scratch != 0) {
    for (uint64_t offset = 0; offset < m_scratch_saved.size(); offset += 8) {
      uint64_t word = 0;
      std::memcpy(&word, m_scratch_saved.data() + offset, 8);
      if (!poke(m_scratch + offset, word) && failure.empty()) {
        failure = "restoring the code at the entry point failed";
      }
    }
    m_scratch = 0;
  }
  // A signal that arrived while held: the kernel delivers it, and restarts
  // or interrupts the syscall (m_regs as stopped) as it would have.
  ptrace(PTRACE_DETACH, m_tid, nullptr, as_pointer(static_cast<uint64_t>(m_pending_signal)));
  m_attached = false;
  if (!failure.empty()) {
    return make_error(ErrorKind::internal, failure);
  }
  return k_done;
}

}  // namespace pyhot::loader::attach
