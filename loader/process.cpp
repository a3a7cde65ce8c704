#include "loader/process.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <map>
#include <optional>

#include "loader/attach/interpreter.hpp"
#include "loader/attach/proc_info.hpp"

namespace pyhot::loader {

namespace {

// The runtime file by the same test attach uses (attach/interpreter.hpp), so
// `ps` and `reload` never disagree about what is Python.
std::string python_runtime_path(int pid, attach::RuntimeFileCache* cache) {
  auto maps = attach::read_maps(pid);
  if (!maps) {
    return {};
  }
  auto runtime = attach::find_runtime_file(pid, *maps, cache);
  return runtime ? runtime->path : std::string();
}

Result<ProcessInfo> inspect(int pid, attach::RuntimeFileCache* cache) {
  if (pid <= 0) {
    return make_error(ErrorKind::usage, "'" + std::to_string(pid) + "' is not a process id");
  }
  auto status = attach::read_any_status(pid);
  if (!status) {
    return make_error(ErrorKind::not_found, "no process with pid " + std::to_string(pid));
  }
  if (status->state == 'Z' || status->state == 'X') {
    // Its pid and status stay until the parent waits, but its memory is gone.
    return make_error(ErrorKind::not_found, "process " + std::to_string(pid) + " is a zombie (it exited; its parent " +
                                                std::to_string(status->parent_pid) + " has not reaped it yet)");
  }
  ProcessInfo info;
  info.pid = pid;
  info.uid = static_cast<int>(status->real_uid);
  info.parent_pid = status->parent_pid;
  info.ns_pid = status->ns_pid != 0 ? status->ns_pid : pid;
  info.command_line = attach::read_command_line(pid);
  info.executable = attach::read_executable(pid);
  info.python_mapping = python_runtime_path(pid, cache);
  return info;
}

}  // namespace

Result<ProcessInfo> inspect_process(int pid) { return inspect(pid, nullptr); }

Result<ProcessInfo> require_python_process(int pid) {
  auto info = inspect_process(pid);
  if (!info) {
    return info;
  }
  if (!info->is_python()) {
    std::string maps = attach::read_proc_text(attach::proc_path(pid, "maps"));
    if (maps.empty() && getuid() != 0 && static_cast<int>(getuid()) != info->uid) {
      return make_error(ErrorKind::permission_denied, "process " + std::to_string(pid) + " belongs to uid " +
                                                          std::to_string(info->uid) +
                                                          ": run pyhot as that user or as root");
    }
    std::string what = info->command_line.empty() ? info->executable : info->command_line;
    return make_error(ErrorKind::not_python,
                      "process " + std::to_string(pid) + " (" + what + ") is not a Python process");
  }
  return info;
}

std::vector<ProcessInfo> list_python_processes() {
  std::vector<ProcessInfo> found;
  attach::RuntimeFileCache cache;
  for (int pid : attach::list_pids()) {
    if (pid == getpid()) {
      continue;
    }
    auto info = inspect(pid, &cache);
    if (info && info->is_python()) {
      found.push_back(std::move(*info));
    }
  }
  std::sort(found.begin(), found.end(), [](const ProcessInfo& a, const ProcessInfo& b) { return a.pid < b.pid; });
  return found;
}

std::vector<int> descendant_pids(int root) {
  std::multimap<int, int> children;
  for (int pid : attach::list_pids()) {
    if (auto status = attach::read_any_status(pid)) {
      children.emplace(status->parent_pid, pid);
    }
  }
  std::vector<int> order;
  std::vector<int> pending{root};
  while (!pending.empty()) {
    int pid = pending.back();
    pending.pop_back();
    auto [begin, end] = children.equal_range(pid);
    for (auto it = begin; it != end; ++it) {
      order.push_back(it->second);
      pending.push_back(it->second);
    }
  }
  std::sort(order.begin(), order.end());
  return order;
}

bool has_forked(int pid) { return !descendant_pids(pid).empty() || attach::has_waited_for_children(pid); }

bool process_has_ended(int pid) {
  auto status = attach::read_any_status(pid);
  return !status || status->state == 'Z' || status->state == 'X';
}

std::uint64_t process_start_time(int pid) { return attach::read_start_time(pid); }

std::optional<int> parent_pid(int pid) {
  auto status = attach::read_any_status(pid);
  if (!status) {
    return std::nullopt;
  }
  return status->parent_pid;
}

bool started_after(int pid, std::uint64_t boot_ns) {
  static const long ticks_per_second = sysconf(_SC_CLK_TCK);
  std::uint64_t ticks = attach::read_start_time(pid);
  if (ticks == 0 || ticks_per_second <= 0) {
    return false;
  }
  // The kernel rounds the start down to a tick: the start is at or after
  // this, so this being after boot_ns shows it.
  return ticks * (1'000'000'000ULL / static_cast<std::uint64_t>(ticks_per_second)) > boot_ns;
}

std::optional<ProcessImage> process_image(int pid) {
  // A fork copies the address space: the child starts with its parent's
  // stack, brk and argument addresses. An exec lays out a new one, at
  // new random addresses, so equal addresses show no exec happened in
  // between -- unless addresses are not randomized, when they prove nothing.
  static const bool randomized = [] {
    std::string level = attach::read_proc_text("/proc/sys/kernel/randomize_va_space");
    return !level.empty() && level[0] != '0';
  }();
  if (!randomized) {
    return std::nullopt;
  }
  std::string personality = attach::read_proc_text("/proc/" + std::to_string(pid) + "/personality");
  constexpr unsigned long k_addr_no_randomize = 0x0040000;
  if (personality.empty() || (std::strtoul(personality.c_str(), nullptr, 16) & k_addr_no_randomize) != 0) {
    return std::nullopt;
  }
  // startstack, start_brk, arg_start; 0 where the kernel hides them.
  auto numbers = attach::read_stat_numbers(pid, {28, 47, 48});
  if (!numbers || std::any_of(numbers->begin(), numbers->end(), [](std::uint64_t n) { return n == 0; })) {
    return std::nullopt;
  }
  return ProcessImage{(*numbers)[0], (*numbers)[1], (*numbers)[2]};
}

std::uint64_t boottime_now_ns() {
  timespec now{};
  clock_gettime(CLOCK_BOOTTIME, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(now.tv_nsec);
}

namespace {

// The target's XDG_RUNTIME_DIR as it started, seen inside its root, when it
// is an absolute path to a directory of the target's uid, mode 0700, not a
// link: no other user can have made a directory in it. The agent applies the
// same test to the same text (_runtime_dir in pyhot_agent.py, from
// /proc/self/environ), so both choose the same directory.
std::optional<std::string> runtime_directory(const ProcessInfo& process) {
  auto path = attach::read_start_environment(process.pid, "XDG_RUNTIME_DIR");
  if (!path) {
    return std::nullopt;
  }
  while (!path->empty() && path->back() == '/') {
    path->pop_back();
  }
  if (path->empty() || path->front() != '/') {
    return std::nullopt;
  }
  struct stat info {};
  std::string seen = "/proc/" + std::to_string(process.pid) + "/root" + *path;
  if (lstat(seen.c_str(), &info) != 0 || !S_ISDIR(info.st_mode) || static_cast<int>(info.st_uid) != process.uid ||
      (info.st_mode & 07777) != 0700) {
    return std::nullopt;
  }
  return path;
}

}  // namespace

std::string socket_directory(const ProcessInfo& process) {
  if (const char* dir = std::getenv("PYHOT_AGENT_SOCKET_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  if (auto runtime = runtime_directory(process)) {
    return *runtime + "/pyhot";
  }
  return "/tmp/pyhot-" + std::to_string(process.uid);
}

std::string agent_socket_directory(const ProcessInfo& process) {
  std::string dir = socket_directory(process);
  if (std::getenv("PYHOT_AGENT_SOCKET_DIR") != nullptr) {
    return dir;
  }
  // Through the target's root, so a target in another mount namespace is reached.
  return "/proc/" + std::to_string(process.pid) + "/root" + dir;
}

std::string agent_socket_name(const ProcessInfo& process) { return std::to_string(process.ns_pid) + ".sock"; }

std::string agent_socket_path(const ProcessInfo& process) {
  return agent_socket_directory(process) + "/" + agent_socket_name(process);
}

}  // namespace pyhot::loader
