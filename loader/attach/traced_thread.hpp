// One thread of another process under ptrace: stopped without SIGSTOP,
// registers and extended FP state saved, made to run syscalls and functions,
// and put back exactly as it was. Safe to abandon at any instant: every
// injected syscall or call returns into a stub that restores the thread's
// registers and resumes (or restarts) what it was doing, so a pyhot killed
// with SIGKILL leaves a running target, never one that meets an int3.
#pragma once

#include <sys/user.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace pyhot::loader::attach {

// Where the thread was when it stopped.
struct StopState {
  long syscall = -1;        // orig_rax: the syscall it was in, -1 for user code
  bool in_syscall = false;  // blocked inside `syscall` and will restart it
  uint64_t rip = 0;
  std::chrono::steady_clock::time_point stopped_at;  // when the stop was seen
};

// The code pyhot writes over the program's entry point (_start, which never
// runs again): `call *%rax` (two entries, for either stack alignment), a
// getpid syscall where the tracer takes the thread back, then pops that put
// the caller-saved registers, flags and rip back from a save area below the
// red zone and return to where the thread was stopped.
struct CallStub {
  static constexpr uint64_t k_call_aligned = 0;  // rsp = save area, 16-byte aligned
  static constexpr uint64_t k_syscall = 7;       // rax = number
  static constexpr uint64_t k_return = 9;        // the tracer's stop (after the syscall)
  static constexpr uint64_t k_call_padded = 26;  // rsp = save area - 8
  static constexpr uint64_t k_size = 31;
  static constexpr uint64_t k_save_below_rsp = 216;  // 128 red zone + 11 saved words
  static const unsigned char k_code[k_size];
};

// The save area the stub pops, from its start: what the thread must resume
// with. A thread stopped in a restartable syscall resumes at the syscall
// instruction with its number in rax, as the kernel's own restart does.
std::string call_stub_save_area(const user_regs_struct& regs);

class TracedThread {
 public:
  // PTRACE_SEIZE + PTRACE_INTERRUPT and wait for the stop. While another
  // tracer holds the thread (EPERM with TracerPid set), retries until `patience`.
  static Result<TracedThread> seize(int pid, int tid, std::chrono::milliseconds patience);

  TracedThread(TracedThread&& other) noexcept;
  TracedThread& operator=(TracedThread&&) = delete;
  TracedThread(const TracedThread&) = delete;
  TracedThread& operator=(const TracedThread&) = delete;
  // Restores and detaches if the caller did not.
  ~TracedThread();

  int tid() const { return m_tid; }
  const StopState& stop_state() const { return m_stop; }

  // Saves the bytes at `address` (executable, never run again: AT_ENTRY),
  // writes the save area below the stack's red zone, then the CallStub.
  Result<Done> install_scratch(uint64_t address);

  Result<uint64_t> remote_syscall(long number, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                                  uint64_t a4 = 0, uint64_t a5 = 0);
  // Calls `function(a0, a1)` on the thread's own stack below the red zone.
  // Waits without limit when `limit` is empty: a call that took a lock must
  // not be abandoned.
  Result<uint64_t> remote_call(uint64_t function, uint64_t a0 = 0, uint64_t a1 = 0,
                               std::optional<std::chrono::milliseconds> limit = std::nullopt);

  Result<Done> write_memory(uint64_t address, const std::string& bytes);
  Result<uint64_t> peek(uint64_t address);
  Result<Done> poke(uint64_t address, uint64_t value);

  // Puts registers, extended state and code back and detaches. With
  // `interrupt_wait`, a restartable wait returns EINTR instead of restarting.
  // A select/pselect6/ppoll that restarts gets its timeout shortened by the
  // time the thread was held, so it ends when it would have without pyhot.
  Result<Done> restore_and_detach(bool interrupt_wait = false);

 private:
  TracedThread(int pid, int tid) : m_pid(pid), m_tid(tid) {}
  Result<Done> wait_for_stop(std::chrono::steady_clock::time_point deadline);
  Result<Done> run_to_stub(std::optional<std::chrono::steady_clock::time_point> deadline);
  Result<Done> resume_syscall(int signal);
  Result<int> wait_for_any_stop();
  Result<Done> take_back_held_time();
  Result<Done> save_state();
  Result<Done> set_regs(const user_regs_struct& regs);

  int m_pid = 0;
  int m_tid = 0;
  bool m_attached = false;
  StopState m_stop;
  user_regs_struct m_regs{};
  std::vector<unsigned char> m_xstate;  // NT_X86_XSTATE, or NT_PRFPREG when absent
  bool m_xstate_is_fpregs = false;
  uint64_t m_scratch = 0;
  std::string m_scratch_saved;  // the entry point's bytes under the stub
  uint64_t m_save_area = 0;     // start of the words the stub pops
  int m_pending_signal = 0;     // arrived while stopped; delivered at detach
};

}  // namespace pyhot::loader::attach
