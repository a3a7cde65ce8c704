// Why the kernel refuses to let pyhot trace a process, in one line that
// says how to fix it (uid, Yama ptrace_scope, capabilities, dumpability).
#pragma once

#include "loader/attach/proc_info.hpp"
#include "util/result.hpp"

namespace pyhot::loader::attach {

// A permission_denied error for `pid`, whose status is `status`.
Error explain_denial(int pid, const ProcessStatus& status);

}  // namespace pyhot::loader::attach
