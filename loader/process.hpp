// What /proc says about a target process: is it there, is it Python, whose
// is it, and where its agent's socket would be.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace pyhot::loader {

struct ProcessInfo {
  int pid = 0;     // as pyhot sees it
  int ns_pid = 0;  // as the target sees itself (innermost NSpid)
  int uid = -1;    // real uid
  int parent_pid = 0;
  std::string executable;  // /proc/PID/exe target
  std::string command_line;
  std::string python_mapping;  // the mapped file exporting the CPython runtime, "" if none
  bool is_python() const { return !python_mapping.empty(); }
};

// not_found: no such process; permission_denied when /proc hides it.
Result<ProcessInfo> inspect_process(int pid);

// not_found / not_python / permission_denied with one clear line each.
Result<ProcessInfo> require_python_process(int pid);

std::vector<ProcessInfo> list_python_processes();
std::vector<int> descendant_pids(int pid);
// True when the process has a child now or has waited for one: a pre-fork
// master that recycles its workers fast can be seen with no child at all.
bool has_forked(int pid);

// True when the process is gone or a zombie: it will run nothing more.
bool process_has_ended(int pid);
// When the process started (clock ticks after boot): a recycled pid is told
// from the process that had it. 0 when it is gone.
std::uint64_t process_start_time(int pid);
// The parent of a live process; nullopt when it is gone.
std::optional<int> parent_pid(int pid);
// Whether the process was forked after `boot_ns` (CLOCK_BOOTTIME, as
// boottime_now_ns() gives it): false when that cannot be shown (its start
// time is kept in clock ticks, so one that started within the tick of
// `boot_ns` is not counted) or it is gone.
bool started_after(int pid, std::uint64_t boot_ns);
std::uint64_t boottime_now_ns();

// Where a process's address space was laid out (its stack, heap and
// arguments): a child forked without exec has its parent's; an exec gives
// new ones. nullopt when the layout is not randomized (equal addresses
// would prove nothing) or the kernel does not show it.
struct ProcessImage {
  std::uint64_t stack = 0;
  std::uint64_t brk = 0;
  std::uint64_t arguments = 0;
  bool operator==(const ProcessImage&) const = default;
};
std::optional<ProcessImage> process_image(int pid);

// Directory the agent of the process listens in, as the target names it:
// PYHOT_AGENT_SOCKET_DIR, else its own XDG_RUNTIME_DIR/pyhot when that
// directory is verified to be private to the target's uid, else
// /tmp/pyhot-UID (verified before use, see secure_dir.hpp).
std::string socket_directory(const ProcessInfo& process);
// The path pyhot connects to: through /proc/PID/root so other mount namespaces work.
std::string agent_socket_path(const ProcessInfo& process);
// Its two parts: the directory as pyhot reaches it, and the socket's name in it.
std::string agent_socket_directory(const ProcessInfo& process);
std::string agent_socket_name(const ProcessInfo& process);

}  // namespace pyhot::loader
