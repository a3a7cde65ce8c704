#include "loader/attach/proc_info.hpp"

#include <dirent.h>
#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pyhot::loader::attach {

namespace {

std::string_view next_field(std::string_view& line) {
  size_t begin = line.find_first_not_of(" \t");
  if (begin == std::string_view::npos) {
    line = {};
    return {};
  }
  line.remove_prefix(begin);
  size_t end = line.find_first_of(" \t");
  std::string_view field = line.substr(0, end);
  line.remove_prefix(end == std::string_view::npos ? line.size() : end);
  return field;
}

uint64_t hex(std::string_view text) {
  uint64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value, 16);
  return value;
}

}  // namespace

std::string read_proc_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<Mapping> parse_maps(std::string_view text) {
  std::vector<Mapping> maps;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    std::string_view range = next_field(line);
    size_t dash = range.find('-');
    if (dash == std::string_view::npos) {
      continue;
    }
    Mapping m;
    m.start = hex(range.substr(0, dash));
    m.end = hex(range.substr(dash + 1));
    m.perms = std::string(next_field(line));
    m.offset = hex(next_field(line));
    m.device = std::string(next_field(line));
    std::string_view inode = next_field(line);
    std::from_chars(inode.data(), inode.data() + inode.size(), m.inode);
    size_t path_begin = line.find_first_not_of(' ');
    if (path_begin != std::string_view::npos) {
      m.path = std::string(line.substr(path_begin));
    }
    maps.push_back(std::move(m));
  }
  return maps;
}

Result<std::vector<Mapping>> read_maps(int pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/maps";
  std::ifstream in(path);
  if (!in) {
    return make_error(ErrorKind::not_found, "no process " + std::to_string(pid));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) {
    // Readable but empty: a kernel thread, a zombie, or no ptrace-read access.
    return make_error(ErrorKind::permission_denied, "cannot read the memory map of process " + std::to_string(pid));
  }
  return parse_maps(text.str());
}

std::optional<ProcessStatus> parse_status(std::string_view text) {
  ProcessStatus status;
  bool saw_name = false;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      continue;
    }
    std::string_view key = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    value.remove_prefix(std::min(value.find_first_not_of(" \t"), value.size()));
    if (key == "Name") {
      status.name = std::string(value);
      saw_name = true;
    } else if (key == "State" && !value.empty()) {
      status.state = value[0];
    } else if (key == "TracerPid") {
      std::from_chars(value.data(), value.data() + value.size(), status.tracer_pid);
    } else if (key == "PPid") {
      std::from_chars(value.data(), value.data() + value.size(), status.parent_pid);
    } else if (key == "NSpid") {
      for (std::string_view pid = next_field(value); !pid.empty(); pid = next_field(value)) {
        std::from_chars(pid.data(), pid.data() + pid.size(), status.ns_pid);
      }
    } else if (key == "CapEff") {
      std::from_chars(value.data(), value.data() + value.size(), status.effective_capabilities, 16);
    } else if (key == "Uid") {
      std::string_view real = next_field(value);
      std::from_chars(real.data(), real.data() + real.size(), status.real_uid);
      std::string_view effective = next_field(value);
      std::from_chars(effective.data(), effective.data() + effective.size(), status.effective_uid);
    }
  }
  if (!saw_name) {
    return std::nullopt;
  }
  return status;
}

std::optional<ProcessStatus> read_any_status(int pid) {
  if (pid <= 0) {
    return std::nullopt;
  }
  return parse_status(read_proc_text(proc_path(pid, "status")));
}

Result<ProcessStatus> read_status(int pid) {
  if (pid <= 0) {
    return make_error(ErrorKind::not_found, "no process " + std::to_string(pid));
  }
  auto status = read_any_status(pid);
  if (!status || status->state == 'Z' || status->state == 'X') {
    return make_error(ErrorKind::not_found, "no process " + std::to_string(pid) + (status ? " (it has exited)" : ""));
  }
  return *status;
}

std::string proc_path(int pid, const std::string& rest) { return "/proc/" + std::to_string(pid) + "/" + rest; }

std::string read_command_line(int pid) {
  std::string cmdline = read_proc_text(proc_path(pid, "cmdline"));
  for (char& c : cmdline) {
    if (c == '\0') {
      c = ' ';
    }
  }
  while (!cmdline.empty() && cmdline.back() == ' ') {
    cmdline.pop_back();
  }
  return cmdline;
}

std::optional<std::string> read_start_environment(int pid, std::string_view name) {
  std::string environ = read_proc_text(proc_path(pid, "environ"));
  std::string_view rest = environ;
  while (!rest.empty()) {
    std::size_t end = std::min(rest.find('\0'), rest.size());
    std::string_view entry = rest.substr(0, end);
    if (entry.size() > name.size() && entry.starts_with(name) && entry[name.size()] == '=') {
      return std::string(entry.substr(name.size() + 1));
    }
    rest.remove_prefix(std::min(end + 1, rest.size()));
  }
  return std::nullopt;
}

std::string read_executable(int pid) {
  char exe[4096];
  ssize_t n = readlink(proc_path(pid, "exe").c_str(), exe, sizeof exe - 1);
  return n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string();
}

std::optional<std::vector<uint64_t>> read_stat_numbers(int pid, std::initializer_list<int> fields) {
  std::string stat = read_proc_text(proc_path(pid, "stat"));
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) {
    return std::nullopt;
  }
  std::string_view rest = std::string_view(stat).substr(close + 1);
  std::vector<uint64_t> numbers;
  int index = 2;
  for (int wanted : fields) {
    std::string_view field;
    while (index < wanted) {
      field = next_field(rest);
      ++index;
    }
    uint64_t number = 0;
    std::from_chars(field.data(), field.data() + field.size(), number);
    numbers.push_back(number);
  }
  return numbers;
}

uint64_t read_start_time(int pid) {
  auto numbers = read_stat_numbers(pid, {22});
  return numbers ? numbers->front() : 0;
}

bool has_waited_for_children(int pid) {
  // cminflt, cmajflt, cutime, cstime: what the children it has waited for
  // used, added to it by the kernel as it reaps each one; any forked child
  // takes at least a page fault.
  auto numbers = read_stat_numbers(pid, {11, 13, 16, 17});
  return numbers && std::any_of(numbers->begin(), numbers->end(), [](uint64_t number) { return number > 0; });
}

std::vector<int> list_pids() {
  std::vector<int> pids;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) {
    return pids;
  }
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0' && pid > 0) {
      pids.push_back(static_cast<int>(pid));
    }
  }
  closedir(dir);
  return pids;
}

std::string read_ptrace_scope() {
  std::string scope = read_proc_text("/proc/sys/kernel/yama/ptrace_scope");
  return scope.substr(0, scope.find('\n'));
}

Result<uint64_t> read_entry_point(int pid) {
  std::string auxv = read_proc_text("/proc/" + std::to_string(pid) + "/auxv");
  for (size_t i = 0; i + 16 <= auxv.size(); i += 16) {
    uint64_t key = 0;
    uint64_t value = 0;
    std::memcpy(&key, auxv.data() + i, 8);
    std::memcpy(&value, auxv.data() + i + 8, 8);
    if (key == AT_ENTRY) {
      return value;
    }
    if (key == AT_NULL) {
      break;
    }
  }
  return make_error(ErrorKind::permission_denied,
                    "cannot read /proc/" + std::to_string(pid) + "/auxv (no ptrace access)");
}

std::vector<int> list_threads(int pid) {
  std::vector<int> tids;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return tids;
  }
  while (dirent* entry = readdir(d)) {
    int tid = static_cast<int>(std::strtol(entry->d_name, nullptr, 10));
    if (tid > 0) {
      tids.push_back(tid);
    }
  }
  closedir(d);
  return tids;
}

std::optional<long> parse_syscall(std::string_view text) {
  if (text.rfind("running", 0) == 0) {
    return -1;
  }
  long number = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc()) {
    return std::nullopt;
  }
  return number;
}

std::optional<long> read_thread_syscall(int pid, int tid) {
  return parse_syscall(read_proc_text("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall"));
}

namespace {

struct SyscallName {
  long number;
  const char* name;
  bool parks;  // blocks until something happens, outside a futex
};

// x86-64 numbers of the syscalls a Python thread is usually found in.
constexpr SyscallName k_syscalls[] = {
    {0, "read", true},
    {7, "poll", true},
    {17, "pread64", true},
    {19, "readv", true},
    {23, "select", true},
    {34, "pause", true},
    {35, "nanosleep", true},
    {43, "accept", true},
    {45, "recvfrom", true},
    {47, "recvmsg", true},
    {61, "wait4", true},
    {202, "futex", false},
    // A sleep the kernel resumes after a ptrace stop (the injector's); not
    // counted as parking: what it waits in is not known from here.
    {219, "restart_syscall", false},
    {230, "clock_nanosleep", true},
    {232, "epoll_wait", true},
    {247, "waitid", true},
    {270, "pselect6", true},
    {271, "ppoll", true},
    {281, "epoll_pwait", true},
    {288, "accept4", true},
    {299, "recvmmsg", true},
    {441, "epoll_pwait2", true},
};

const SyscallName* find_syscall(long number) {
  for (const SyscallName& entry : k_syscalls) {
    if (entry.number == number) {
      return &entry;
    }
  }
  return nullptr;
}

}  // namespace

std::string syscall_name(long number) {
  if (number == -1) {
    return "running";
  }
  const SyscallName* entry = find_syscall(number);
  return entry != nullptr ? entry->name : "syscall " + std::to_string(number);
}

bool is_parking_syscall(long number) {
  const SyscallName* entry = find_syscall(number);
  return entry != nullptr && entry->parks;
}

}  // namespace pyhot::loader::attach
