// One thread of another process under ptrace: stopped without SIGSTOP,
// registers and extended FP state saved, made to run syscalls and functions,
// and put back exactly as it was.
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
};

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

  // Saves 8 bytes at `address` (executable, never run again: AT_ENTRY) and
  // writes the stubs `syscall; int3` and `call *%rax; int3` there.
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

  // Puts code, extended state and registers back and detaches. With
  // `interrupt_wait`, a restartable wait returns EINTR instead of restarting.
  Result<Done> restore_and_detach(bool interrupt_wait = false);

 private:
  TracedThread(int pid, int tid) : m_pid(pid), m_tid(tid) {}
  Result<Done> wait_for_stop(std::chrono::steady_clock::time_point deadline);
  Result<Done> run_until_trap(uint64_t expected_rip, std::optional<std::chrono::steady_clock::time_point> deadline);
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
  uint64_t m_scratch_saved = 0;
  int m_pending_signal = 0;  // arrived while stopped; delivered at detach
};

}  // namespace pyhot::loader::attach
