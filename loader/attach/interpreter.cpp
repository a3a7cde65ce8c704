#include "loader/attach/interpreter.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "loader/attach/debug_offsets.hpp"
#include "loader/attach/ptrace_permission.hpp"
#include "loader/attach/remote_debug.hpp"
#include "loader/attach/remote_memory.hpp"

namespace pyhot::loader::attach {

namespace {

// The symbol every supported CPython exports and injection needs.
constexpr std::string_view k_runtime_symbol = "Py_AddPendingCall";

std::string basename_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Candidate files for the runtime, best first: libpython, a python
// executable, then every other file mapping (an embedding host).
std::vector<const Mapping*> runtime_candidates(const std::vector<Mapping>& maps) {
  std::vector<const Mapping*> libpython;
  std::vector<const Mapping*> python;
  std::vector<const Mapping*> other;
  for (const Mapping& m : maps) {
    if (m.path.empty() || m.path[0] != '/' || m.inode == 0) {
      continue;
    }
    std::vector<const Mapping*>* bucket = &other;
    std::string base = basename_of(m.path);
    if (base.rfind("libpython", 0) == 0) {
      bucket = &libpython;
    } else if (base.find("python") != std::string::npos) {
      bucket = &python;
    }
    auto same_path = [&](const Mapping* seen) { return seen->path == m.path; };
    if (std::none_of(bucket->begin(), bucket->end(), same_path)) {
      bucket->push_back(&m);
    }
  }
  libpython.insert(libpython.end(), python.begin(), python.end());
  libpython.insert(libpython.end(), other.begin(), other.end());
  return libpython;
}

Result<ElfImage> open_mapped_file(int pid, const std::string& path, const std::vector<Mapping>& maps) {
  const std::string deleted = " (deleted)";
  bool is_deleted =
      path.size() > deleted.size() && path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0;
  if (!is_deleted) {
    auto image = ElfImage::open(proc_path(pid, "root") + path);
    if (image) {
      return image;
    }
  }
  // Upgraded or deleted on disk, or another mount namespace: the mapping itself.
  for (const Mapping& m : maps) {
    if (m.path == path && m.offset == 0) {
      char range[64];
      std::snprintf(range, sizeof range, "%lx-%lx", static_cast<unsigned long>(m.start),
                    static_cast<unsigned long>(m.end));
      return ElfImage::open(proc_path(pid, "map_files/") + range);
    }
  }
  return make_error(ErrorKind::not_found, "cannot open '" + path + "'");
}

uint64_t lowest_offset_zero_start(const std::vector<Mapping>& maps, const std::string& path) {
  uint64_t start = 0;
  for (const Mapping& m : maps) {
    if (m.path == path && m.offset == 0 && (start == 0 || m.start < start)) {
      start = m.start;
    }
  }
  return start;
}

void resolve_symbols(InterpreterInfo& info, const ElfImage& image) {
  auto address = [&](std::string_view name) -> uint64_t {
    auto value = image.symbol(name);
    return value ? *value + info.load_bias : 0;
  };
  info.add_pending_call = address("Py_AddPendingCall");
  info.run_simple_string = address("PyRun_SimpleString");
  info.gil_state_ensure = address("PyGILState_Ensure");
  info.gil_state_release = address("PyGILState_Release");
  info.is_initialized = address("Py_IsInitialized");
  info.is_finalizing = address("Py_IsFinalizing");
  if (info.is_finalizing == 0) {
    info.is_finalizing = address("_Py_IsFinalizing");
  }
  info.runtime = address("_PyRuntime");
  if (info.runtime == 0) {
    if (auto section = image.section(".PyRuntime")) {
      info.runtime = section->address + info.load_bias;
    }
  }
}

// Debug-offsets cookie, then Py_Version, then soname, then the file name.
// The target's binary is never run.
void detect_version(InterpreterInfo& info, const ElfImage& image) {
  if (info.runtime != 0) {
    auto head = read_remote(info.pid, info.runtime, 16);
    if (head && has_debug_cookie(*head)) {
      info.has_debug_offsets = true;
      info.version = version_from_hex(debug_offsets_version(*head));
      info.version_source = "debug offsets";
    }
  }
  if (info.version_source.empty()) {
    if (auto symbol = image.symbol("Py_Version")) {
      std::string_view bytes = image.bytes_at(*symbol, 4);
      if (bytes.size() == 4) {
        uint32_t hex = 0;
        std::memcpy(&hex, bytes.data(), 4);
        info.version = version_from_hex(hex);
        info.version_source = "Py_Version";
      }
    }
  }
  if (info.version_source.empty()) {
    if (auto version = version_from_name(image.soname())) {
      info.version = *version;
      info.version_source = "soname";
    } else if (auto from_path = version_from_name(info.path)) {
      info.version = *from_path;
      info.version_source = "file name";
    }
  }
}

// libc's errno, so an escalation leaves it as it was.
uint64_t find_errno_location(int pid, const std::vector<Mapping>& maps) {
  for (const Mapping& m : maps) {
    std::string base = basename_of(m.path);
    if (m.offset == 0 &&
        (base.rfind("libc.so", 0) == 0 || base.rfind("libc-", 0) == 0 || base.rfind("ld-musl", 0) == 0)) {
      auto libc = open_mapped_file(pid, m.path, maps);
      if (libc) {
        auto value = libc->symbol("__errno_location");
        uint64_t bias = libc->is_shared_object() ? m.start - libc->first_load_address() : 0;
        if (value) {
          return *value + bias;
        }
      }
      break;
    }
  }
  return 0;
}

}  // namespace

std::string PythonVersion::text() const {
  std::string text = std::to_string(major) + "." + std::to_string(minor);
  if (micro >= 0) {
    text += "." + std::to_string(micro);
  }
  return text;
}

PythonVersion version_from_hex(uint64_t hex) {
  return PythonVersion{static_cast<int>((hex >> 24) & 0xff), static_cast<int>((hex >> 16) & 0xff),
                       static_cast<int>((hex >> 8) & 0xff)};
}

std::optional<PythonVersion> version_from_name(const std::string& name) {
  std::string base = basename_of(name);
  auto at = base.find("python");
  if (at == std::string::npos) {
    return std::nullopt;
  }
  const char* p = base.c_str() + at + 6;
  char* end = nullptr;
  long major = std::strtol(p, &end, 10);
  if (end == p || *end != '.') {
    return std::nullopt;
  }
  p = end + 1;
  long minor = std::strtol(p, &end, 10);
  if (end == p || major < 2 || major > 9) {
    return std::nullopt;
  }
  return PythonVersion{static_cast<int>(major), static_cast<int>(minor), -1};
}

Result<RuntimeFile> find_runtime_file(int pid, const std::vector<Mapping>& maps, RuntimeFileCache* cache) {
  for (const Mapping* mapping : runtime_candidates(maps)) {
    std::string key = mapping->device + ":" + std::to_string(mapping->inode) + ":" + mapping->path;
    if (cache != nullptr) {
      auto known = cache->find(key);
      if (known != cache->end() && !known->second) {
        continue;
      }
    }
    auto candidate = open_mapped_file(pid, mapping->path, maps);
    if (!candidate) {
      if (candidate.error().kind == ErrorKind::permission_denied) {
        return candidate.error();
      }
      continue;
    }
    bool exports = candidate->symbol(k_runtime_symbol).has_value();
    if (cache != nullptr) {
      (*cache)[key] = exports;
    }
    if (exports) {
      return RuntimeFile{mapping->path, std::move(*candidate)};
    }
  }
  return make_error(ErrorKind::not_python, "no Python runtime in its memory map");
}

Result<InterpreterInfo> inspect_interpreter(int pid) {
  auto status = read_status(pid);
  if (!status) {
    return status.error();
  }
  auto maps = read_maps(pid);
  if (!maps) {
    if (maps.error().kind == ErrorKind::permission_denied || access(proc_path(pid, "").c_str(), F_OK) == 0) {
      return explain_denial(pid, *status);
    }
    return maps.error();
  }
  auto runtime = find_runtime_file(pid, *maps);
  if (!runtime) {
    if (runtime.error().kind != ErrorKind::not_python) {
      return runtime.error();
    }
    return make_error(ErrorKind::not_python, "process " + std::to_string(pid) + " (" + status->name +
                                                 ") is not a Python process: no Python runtime in its memory map");
  }
  InterpreterInfo info;
  info.pid = pid;
  info.path = runtime->path;
  info.host_path = runtime->image.name();
  const ElfImage& image = runtime->image;
  info.shared_library = image.is_shared_object();
  if (info.shared_library) {
    uint64_t start = lowest_offset_zero_start(*maps, info.path);
    info.load_bias = start - image.first_load_address();
  }
  resolve_symbols(info, image);
  detect_version(info, image);
  if (info.version.at_least(3, 14) && info.has_debug_offsets) {
    info.remote_debugging_enabled = read_remote_debugging_enabled(pid, info.runtime);
  }
  info.errno_location = find_errno_location(pid, *maps);
  info.main_thread_syscall = read_thread_syscall(pid, pid).value_or(-1);
  return info;
}

}  // namespace pyhot::loader::attach
