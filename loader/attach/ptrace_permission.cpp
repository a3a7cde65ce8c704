#include "loader/attach/ptrace_permission.hpp"

#include <unistd.h>

#include <string>

namespace pyhot::loader::attach {

namespace {

constexpr int k_cap_sys_ptrace = 19;

bool has_cap_sys_ptrace() {
  auto self = read_any_status(getpid());
  return self && ((self->effective_capabilities >> k_cap_sys_ptrace) & 1) != 0;
}

}  // namespace

Error explain_denial(int pid, const ProcessStatus& status) {
  std::string who = "process " + std::to_string(pid) + " (" + status.name + ")";
  if (status.tracer_pid != 0) {
    return make_error(ErrorKind::permission_denied,
                      who + " is already traced by PID " + std::to_string(status.tracer_pid));
  }
  bool cap = has_cap_sys_ptrace();
  uid_t me = geteuid();
  if (!cap && status.real_uid != me) {
    return make_error(ErrorKind::permission_denied, who + " runs as uid " + std::to_string(status.real_uid) +
                                                        " and pyhot as uid " + std::to_string(me) +
                                                        ": run pyhot as that user or as root");
  }
  std::string scope = read_ptrace_scope();
  if (scope == "3") {
    return make_error(ErrorKind::permission_denied,
                      "kernel.yama.ptrace_scope is 3: ptrace is disabled on this machine until reboot");
  }
  if (!cap && scope == "2") {
    return make_error(ErrorKind::permission_denied,
                      "kernel.yama.ptrace_scope is 2: attaching needs CAP_SYS_PTRACE (run pyhot as root)");
  }
  if (!cap && scope == "1") {
    return make_error(ErrorKind::permission_denied,
                      "kernel.yama.ptrace_scope is 1: only a parent may trace " + who +
                          "; run pyhot with CAP_SYS_PTRACE (sudo) or set kernel.yama.ptrace_scope=0");
  }
  if (!cap && me == 0) {
    return make_error(ErrorKind::permission_denied,
                      "pyhot runs as root without CAP_SYS_PTRACE (in a container: --cap-add=SYS_PTRACE)");
  }
  return make_error(ErrorKind::permission_denied,
                    who +
                        " cannot be traced: it is not dumpable (setuid/setgid program, or "
                        "prctl(PR_SET_DUMPABLE, 0)) or an LSM forbids ptrace");
}

}  // namespace pyhot::loader::attach
