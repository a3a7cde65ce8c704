// Finding the Python runtime in a process: the one answer to "is this a
// Python process" (a mapped file exporting the CPython C API), its version,
// and the run-time addresses of the functions injection calls.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "loader/attach/elf_image.hpp"
#include "loader/attach/proc_info.hpp"
#include "util/result.hpp"

namespace pyhot::loader::attach {

struct PythonVersion {
  int major = 0;
  int minor = 0;
  int micro = -1;            // -1 when only major.minor is known (soname / file name)
  std::string text() const;  // "3.11.7" or "3.9"
  bool at_least(int want_major, int want_minor) const {
    return major > want_major || (major == want_major && minor >= want_minor);
  }
};

// What pyhot found in a process: for `pyhot ps`, diagnostics and injection.
struct InterpreterInfo {
  int pid = 0;
  std::string path;             // the file holding the runtime, as the target sees it
  std::string host_path;        // how pyhot opened it (/proc/PID/root/...)
  bool shared_library = false;  // libpython3.X.so, not a statically linked executable
  PythonVersion version;
  std::string version_source;  // "debug offsets", "Py_Version", "soname", "file name"
  uint64_t load_bias = 0;
  // Run-time addresses in the target, 0 when absent.
  uint64_t add_pending_call = 0;
  uint64_t run_simple_string = 0;
  uint64_t gil_state_ensure = 0;
  uint64_t gil_state_release = 0;
  uint64_t is_initialized = 0;
  uint64_t is_finalizing = 0;                    // _Py_IsFinalizing (3.8-3.12) or Py_IsFinalizing (3.13+)
  uint64_t errno_location = 0;                   // libc's __errno_location, to keep errno intact
  uint64_t runtime = 0;                          // _PyRuntime
  bool has_debug_offsets = false;                // "xdebugpy" cookie (3.13+)
  std::optional<bool> remote_debugging_enabled;  // 3.14+ only
  long main_thread_syscall = -1;                 // from /proc; -1 running
};

// The mapped file that holds the Python runtime: the first of libpython, a
// file named like python, then any other mapped file (an embedding host)
// that exports Py_AddPendingCall.
struct RuntimeFile {
  std::string path;  // as the target sees it
  ElfImage image;
};

// Remembers, per file (device and inode), whether it exports the runtime, so
// listing every process opens each shared library once.
using RuntimeFileCache = std::map<std::string, bool>;

// not_python when no mapped file exports the runtime; permission_denied when
// a candidate cannot be opened.
Result<RuntimeFile> find_runtime_file(int pid, const std::vector<Mapping>& maps, RuntimeFileCache* cache = nullptr);

// Reads the target's maps and files; changes nothing in the target.
Result<InterpreterInfo> inspect_interpreter(int pid);

// Version from a soname or file name: "libpython3.11.so.1.0", "python3.9" -> 3.11 / 3.9.
std::optional<PythonVersion> version_from_name(const std::string& name);
// Version from a PY_VERSION_HEX value (Py_Version, debug offsets).
PythonVersion version_from_hex(uint64_t hex);

}  // namespace pyhot::loader::attach
