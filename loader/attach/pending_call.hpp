// The ptrace path (CPython 3.8-3.13, or 3.14 with --force): stop the main
// thread, queue Py_AddPendingCall(PyRun_SimpleString, page) from it, and
// escalate through PyGILState_Ensure when it is parked in a blocking call.
#pragma once

#include <string>

#include "loader/attach/inject_window.hpp"
#include "loader/attach/injector.hpp"

namespace pyhot::loader::attach {

Result<InjectOutcome> inject_with_ptrace(const InterpreterInfo& info, const std::string& bootstrap,
                                         const std::string& token, const InjectOptions& options,
                                         InjectClock::time_point deadline);

}  // namespace pyhot::loader::attach
