// The PEP 768 half of CPython 3.14+'s _Py_DebugOffsets table, which sits at
// the start of _PyRuntime: where to write a script path and raise the flag.
#pragma once

#include <cstdint>
#include <string_view>

#include "util/result.hpp"

namespace pyhot::loader::attach {

struct DebugOffsets {
  uint64_t version = 0;  // PY_VERSION_HEX of the target
  bool free_threaded = false;
  uint64_t runtime_finalizing = 0;  // in _PyRuntimeState (a PyThreadState*)
  uint64_t runtime_interpreters_head = 0;
  uint64_t interp_id = 0;  // in PyInterpreterState
  uint64_t interp_next = 0;
  uint64_t interp_threads_head = 0;
  uint64_t interp_threads_main = 0;
  uint64_t tstate_next = 0;  // in PyThreadState
  uint64_t tstate_native_thread_id = 0;
  uint64_t eval_breaker = 0;              // in PyThreadState
  uint64_t remote_debugger_support = 0;   // in PyThreadState
  uint64_t remote_debugging_enabled = 0;  // in PyInterpreterState (an int)
  uint64_t debugger_pending_call = 0;     // in _PyRemoteDebuggerSupport (an int32)
  uint64_t debugger_script_path = 0;      // in _PyRemoteDebuggerSupport
  uint64_t debugger_script_path_size = 0;
};

inline constexpr std::string_view k_debug_cookie = "xdebugpy";
inline constexpr size_t k_debug_offsets_size_3_14 = 760;
inline constexpr uint64_t k_eval_please_stop_bit = uint64_t{1} << 5;

// True when the bytes at _PyRuntime start with the cookie (CPython 3.13+).
bool has_debug_cookie(std::string_view runtime_bytes);
// The version field of a table that has the cookie.
uint64_t debug_offsets_version(std::string_view runtime_bytes);

// Parses and validates the table: cookie, a 3.14 layout, plausible offsets.
// `runtime_bytes` are the first k_debug_offsets_size_3_14 bytes of _PyRuntime.
Result<DebugOffsets> parse_debug_offsets(std::string_view runtime_bytes);

}  // namespace pyhot::loader::attach
