#include "loader/attach/debug_offsets.hpp"

#include <cstdio>
#include <cstring>
#include <string>

namespace pyhot::loader::attach {

namespace {

// Byte offsets of the fields in the v3.14.0 _Py_DebugOffsets (all uint64_t):
// cookie[8], version, free_threaded, runtime_state{3}, interpreter_state{16},
// thread_state{9}, ... , debugger_support{6} at 712.
constexpr size_t k_version = 8;
constexpr size_t k_free_threaded = 16;
constexpr size_t k_runtime_finalizing = 32;
constexpr size_t k_runtime_interpreters_head = 40;
constexpr size_t k_interp_id = 56;
constexpr size_t k_interp_next = 64;
constexpr size_t k_interp_threads_head = 72;
constexpr size_t k_interp_threads_main = 80;
constexpr size_t k_tstate_next = 192;
constexpr size_t k_tstate_native_thread_id = 224;
constexpr size_t k_debugger_support = 712;

uint64_t u64(std::string_view bytes, size_t offset) {
  uint64_t value = 0;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

std::string hex_version(uint64_t version) {
  char text[32];
  std::snprintf(text, sizeof text, "%llu.%llu (0x%08llx)", static_cast<unsigned long long>((version >> 24) & 0xff),
                static_cast<unsigned long long>((version >> 16) & 0xff), static_cast<unsigned long long>(version));
  return text;
}

}  // namespace

bool has_debug_cookie(std::string_view runtime_bytes) {
  return runtime_bytes.size() >= 16 && runtime_bytes.substr(0, 8) == k_debug_cookie;
}

uint64_t debug_offsets_version(std::string_view runtime_bytes) {
  return has_debug_cookie(runtime_bytes) ? u64(runtime_bytes, k_version) : 0;
}

Result<DebugOffsets> parse_debug_offsets(std::string_view bytes) {
  if (!has_debug_cookie(bytes)) {
    return make_error(ErrorKind::not_python, "_PyRuntime does not start with the 'xdebugpy' cookie");
  }
  if (bytes.size() < k_debug_offsets_size_3_14) {
    return make_error(ErrorKind::protocol, "debug offsets table is truncated");
  }
  DebugOffsets t;
  t.version = u64(bytes, k_version);
  // Only the 3.14 layout is known; a later minor may have moved fields.
  if ((t.version >> 16) != 0x030E) {
    return make_error(ErrorKind::refused,
                      "debug offsets are for Python " + hex_version(t.version) + "; only the 3.14 layout is known");
  }
  // Alphas and betas moved fields around; release candidates kept the final layout.
  uint64_t release_level = t.version & 0xF0;
  if (release_level != 0xF0 && release_level != 0xC0) {
    return make_error(ErrorKind::refused,
                      "Python " + hex_version(t.version) + " is a pre-release whose debug offsets are not known");
  }
  t.free_threaded = u64(bytes, k_free_threaded) != 0;
  t.runtime_finalizing = u64(bytes, k_runtime_finalizing);
  t.runtime_interpreters_head = u64(bytes, k_runtime_interpreters_head);
  t.interp_id = u64(bytes, k_interp_id);
  t.interp_next = u64(bytes, k_interp_next);
  t.interp_threads_head = u64(bytes, k_interp_threads_head);
  t.interp_threads_main = u64(bytes, k_interp_threads_main);
  t.tstate_next = u64(bytes, k_tstate_next);
  t.tstate_native_thread_id = u64(bytes, k_tstate_native_thread_id);
  t.eval_breaker = u64(bytes, k_debugger_support + 0);
  t.remote_debugger_support = u64(bytes, k_debugger_support + 8);
  t.remote_debugging_enabled = u64(bytes, k_debugger_support + 16);
  t.debugger_pending_call = u64(bytes, k_debugger_support + 24);
  t.debugger_script_path = u64(bytes, k_debugger_support + 32);
  t.debugger_script_path_size = u64(bytes, k_debugger_support + 40);

  // Structures are far smaller than 1 MiB; anything else means a wrong layout.
  constexpr uint64_t k_limit = uint64_t{1} << 20;
  for (uint64_t offset :
       {t.runtime_interpreters_head, t.interp_threads_main, t.tstate_next, t.eval_breaker, t.remote_debugger_support,
        t.remote_debugging_enabled, t.debugger_pending_call, t.debugger_script_path}) {
    if (offset >= k_limit) {
      return make_error(ErrorKind::protocol,
                        "debug offsets table of Python " + hex_version(t.version) + " looks corrupt");
    }
  }
  if (t.debugger_script_path_size < 16 || t.debugger_script_path_size > 65536) {
    return make_error(ErrorKind::protocol,
                      "debug offsets: implausible script path size " + std::to_string(t.debugger_script_path_size));
  }
  return t;
}

}  // namespace pyhot::loader::attach
