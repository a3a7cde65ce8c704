// Python stacks read from outside a process, for when no code can run in it
// (a thread holds the GIL and never lets go): CPython 3.13 publishes where
// its thread states, frames and code objects keep their fields
// (_Py_DebugOffsets at the start of _PyRuntime), and this reads them with
// process_vm_readv while the process runs. Older versions publish nothing,
// and their layouts are not guessed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "loader/attach/interpreter.hpp"
#include "util/result.hpp"

namespace pyhot::loader::attach {

struct RemoteFrame {
  std::string file;
  std::string function;  // co_qualname
  int line = 0;          // 0 when the line table has none for the instruction
};

struct RemoteThread {
  uint64_t thread_id = 0;  // pthread id: threading's ident
  long native_id = 0;      // the kernel's thread id
  bool holds_gil = false;
  std::vector<RemoteFrame> frames;  // innermost last
  std::string error;                // the stack could not be read whole (it changed meanwhile)
};

struct RemoteStacks {
  bool gil_locked = false;
  std::vector<RemoteThread> threads;
};

// The byte offsets this reader uses, from the 3.13 table.
struct StackOffsets {
  uint64_t interpreters_head = 0;
  uint64_t threads_head = 0;
  uint64_t gil_locked = 0;  // in PyInterpreterState: _gil.locked (an int)
  uint64_t gil_holder = 0;  // _gil.last_holder (a PyThreadState*)
  uint64_t tstate_next = 0;
  uint64_t tstate_current_frame = 0;
  uint64_t tstate_thread_id = 0;
  uint64_t tstate_native_thread_id = 0;
  uint64_t frame_previous = 0;
  uint64_t frame_executable = 0;
  uint64_t frame_instr_ptr = 0;
  uint64_t frame_owner = 0;
  uint64_t code_filename = 0;
  uint64_t code_qualname = 0;
  uint64_t code_linetable = 0;
  uint64_t code_firstlineno = 0;
  uint64_t code_adaptive = 0;
  uint64_t object_type = 0;
  uint64_t type_name = 0;
  uint64_t bytes_size = 0;
  uint64_t bytes_data = 0;
  uint64_t unicode_state = 0;
  uint64_t unicode_length = 0;
  uint64_t unicode_ascii_size = 0;
};

inline constexpr size_t k_debug_offsets_size_3_13 = 584;

// not_python without the cookie, refused for a version whose table this
// reader does not know (anything but 3.13, a free-threaded build).
Result<StackOffsets> parse_stack_offsets(std::string_view runtime_bytes);

// The line of the instruction `code_unit` (an index in code units) in a
// 3.11+ location table.
int line_of_instruction(std::string_view location_table, int first_line, uint64_t code_unit);

// Reads every thread's stack of the main interpreter without stopping the
// process. refused (with the reason) where the version publishes no layout.
Result<RemoteStacks> read_remote_stacks(const InterpreterInfo& interpreter);

}  // namespace pyhot::loader::attach
