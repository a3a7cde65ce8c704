// The one reader of /proc: a process's status fields, command line,
// executable, mappings, auxv entry point and the syscall each thread is
// parked in. Parsing is separate from reading so tests can feed text.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace pyhot::loader::attach {

struct Mapping {
  uint64_t start = 0;
  uint64_t end = 0;
  std::string perms;  // "r-xp"
  uint64_t offset = 0;
  std::string device;  // "fd:01"
  uint64_t inode = 0;
  std::string path;  // empty for anonymous; "[heap]" for pseudo; " (deleted)" kept
};

std::vector<Mapping> parse_maps(std::string_view text);
Result<std::vector<Mapping>> read_maps(int pid);

struct ProcessStatus {
  std::string name;
  char state = '?';  // R S D T t Z X
  int tracer_pid = 0;
  int parent_pid = 0;
  int ns_pid = 0;  // innermost NSpid: the pid as the process sees itself
  uint32_t real_uid = 0;
  uint32_t effective_uid = 0;
  uint64_t effective_capabilities = 0;  // CapEff
};

std::optional<ProcessStatus> parse_status(std::string_view text);
// not_found when the process does not exist (or is a zombie).
Result<ProcessStatus> read_status(int pid);
// Also a zombie's status; nullopt when there is no such process.
std::optional<ProcessStatus> read_any_status(int pid);

// argv joined by spaces, trailing spaces dropped; "" for a kernel thread.
std::string read_command_line(int pid);
// A variable of the environment the process started with (/proc/PID/environ:
// later changes of its own environment are not there); nullopt when unset or
// unreadable. The first one counts when it is there twice, as for getenv().
std::optional<std::string> read_start_environment(int pid, std::string_view name);
// The target of /proc/PID/exe; "" when hidden.
std::string read_executable(int pid);
// Field 22 of /proc/PID/stat (clock ticks after boot), so a recycled pid is
// told from the process that had it; 0 when unreadable.
uint64_t read_start_time(int pid);
// Numbered fields of /proc/PID/stat (ascending, from 3), as numbers;
// nullopt when unreadable.
std::optional<std::vector<uint64_t>> read_stat_numbers(int pid, std::initializer_list<int> fields);
// True once the process has reaped a child (the kernel adds each reaped
// child's faults and times to its parent's counters).
bool has_waited_for_children(int pid);
// Every numeric entry of /proc.
std::vector<int> list_pids();
// kernel.yama.ptrace_scope, "" without Yama.
std::string read_ptrace_scope();
// "/proc/PID/<rest>".
std::string proc_path(int pid, const std::string& rest);

// AT_ENTRY from /proc/PID/auxv: the program's _start, which never runs again.
Result<uint64_t> read_entry_point(int pid);

std::vector<int> list_threads(int pid);

// From /proc/PID/task/TID/syscall: the syscall number the thread is blocked
// in, -1 when it is running user code, nullopt when unreadable.
std::optional<long> parse_syscall(std::string_view text);
std::optional<long> read_thread_syscall(int pid, int tid);

// x86-64 syscall names for messages ("clock_nanosleep").
std::string syscall_name(long number);
// A blocking syscall that is not a futex: a pending call cannot run until it returns.
bool is_parking_syscall(long number);
inline constexpr long k_sys_futex = 202;

// Reads a small /proc file; empty on failure.
std::string read_proc_text(const std::string& path);

}  // namespace pyhot::loader::attach
