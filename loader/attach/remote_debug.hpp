// The PEP 768 path (CPython 3.14+): write the script path and the pending
// flag into the main thread's state and let the interpreter run it at its
// next eval-breaker check. Nothing in the target executes pyhot's code.
#pragma once

#include <optional>
#include <string>

#include "loader/attach/debug_offsets.hpp"
#include "loader/attach/inject_window.hpp"
#include "loader/attach/injector.hpp"

namespace pyhot::loader::attach {

// The main interpreter (id 0) from _PyRuntime's list.
Result<uint64_t> main_interpreter(int pid, uint64_t runtime, const DebugOffsets& t);

// The main interpreter's remote_debugging_enabled; nullopt when unreadable.
std::optional<bool> read_remote_debugging_enabled(int pid, uint64_t runtime);

Result<InjectOutcome> inject_remote_debug(const InterpreterInfo& info, const std::string& bootstrap,
                                          const std::string& token, const InjectOptions& options,
                                          InjectClock::time_point deadline);

}  // namespace pyhot::loader::attach
