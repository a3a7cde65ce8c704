#include "loader/process.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace pyhot::loader {

namespace {

std::string read_proc(int pid, const char* name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + name, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string status_field(const std::string& status, const std::string& field) {
  std::istringstream lines(status);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return line.substr(field.size() + 1);
    }
  }
  return {};
}

bool looks_like_python(const std::string& path) {
  auto slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return base.rfind("python", 0) == 0 || base.rfind("libpython", 0) == 0;
}

// The interpreter mapped into the process: the executable or libpythonX.Y.so.
std::string find_python_mapping(int pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  std::string executable_match;
  while (std::getline(maps, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) {
      continue;
    }
    std::string path = line.substr(slash);
    if (path.find("libpython") != std::string::npos) {
      return path;
    }
    if (executable_match.empty() && looks_like_python(path)) {
      executable_match = path;
    }
  }
  return executable_match;
}

}  // namespace

Result<ProcessInfo> inspect_process(int pid) {
  if (pid <= 0) {
    return make_error(ErrorKind::usage, "'" + std::to_string(pid) + "' is not a process id");
  }
  std::string proc = "/proc/" + std::to_string(pid);
  if (access(proc.c_str(), F_OK) != 0) {
    return make_error(ErrorKind::not_found, "no process with pid " + std::to_string(pid));
  }
  ProcessInfo info;
  info.pid = pid;
  std::string status = read_proc(pid, "status");
  if (status.empty()) {
    return make_error(ErrorKind::not_found, "no process with pid " + std::to_string(pid));
  }
  std::istringstream(status_field(status, "Uid")) >> info.uid;
  std::istringstream(status_field(status, "PPid")) >> info.parent_pid;
  std::istringstream ns_pids(status_field(status, "NSpid"));
  int ns_pid = pid;
  while (ns_pids >> ns_pid) {
  }
  info.ns_pid = ns_pid;
  std::string cmdline = read_proc(pid, "cmdline");
  for (char& c : cmdline) {
    if (c == '\0') {
      c = ' ';
    }
  }
  while (!cmdline.empty() && cmdline.back() == ' ') {
    cmdline.pop_back();
  }
  info.command_line = cmdline;
  char exe[4096];
  ssize_t n = readlink((proc + "/exe").c_str(), exe, sizeof exe - 1);
  if (n > 0) {
    info.executable.assign(exe, static_cast<std::size_t>(n));
  }
  info.python_mapping = find_python_mapping(pid);
  return info;
}

Result<ProcessInfo> require_python_process(int pid) {
  auto info = inspect_process(pid);
  if (!info) {
    return info;
  }
  if (!info->is_python()) {
    std::string maps = read_proc(pid, "maps");
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
  DIR* dir = opendir("/proc");
  if (dir == nullptr) {
    return found;
  }
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid == getpid()) {
      continue;
    }
    auto info = inspect_process(static_cast<int>(pid));
    if (info && info->is_python()) {
      found.push_back(std::move(*info));
    }
  }
  closedir(dir);
  std::sort(found.begin(), found.end(), [](const ProcessInfo& a, const ProcessInfo& b) { return a.pid < b.pid; });
  return found;
}

std::vector<int> descendant_pids(int root) {
  std::multimap<int, int> children;
  DIR* dir = opendir("/proc");
  if (dir != nullptr) {
    while (dirent* entry = readdir(dir)) {
      char* end = nullptr;
      long pid = std::strtol(entry->d_name, &end, 10);
      if (end == entry->d_name || *end != '\0') {
        continue;
      }
      std::istringstream ppid(status_field(read_proc(static_cast<int>(pid), "status"), "PPid"));
      int parent = 0;
      if (ppid >> parent) {
        children.emplace(parent, static_cast<int>(pid));
      }
    }
    closedir(dir);
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

std::string socket_directory(int uid) {
  if (const char* dir = std::getenv("PYHOT_AGENT_SOCKET_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  return "/tmp/pyhot-" + std::to_string(uid);
}

std::string agent_socket_path(const ProcessInfo& process) {
  std::string dir = socket_directory(process.uid);
  std::string name = "/" + std::to_string(process.ns_pid) + ".sock";
  if (std::getenv("PYHOT_AGENT_SOCKET_DIR") != nullptr) {
    return dir + name;
  }
  // Through the target's root, so a target in another mount namespace is reached.
  return "/proc/" + std::to_string(process.pid) + "/root" + dir + name;
}

}  // namespace pyhot::loader
