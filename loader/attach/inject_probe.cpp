// Test driver: pyhot_inject_probe [--inspect] [--force] [--no-escalate]
//   [--wait-file PATH] [--deadline-ms N] PID [BOOTSTRAP]
// Injects BOOTSTRAP (Python source) into PID and prints one line; exit 0 on
// success, 1 on an error (the message on stderr).
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "loader/attach/injector.hpp"
#include "loader/attach/proc_info.hpp"

using namespace pyhot::loader::attach;

int main(int argc, char** argv) {
  InjectOptions options;
  bool inspect_only = false;
  std::string wait_file;
  int arg = 1;
  for (; arg < argc && std::strncmp(argv[arg], "--", 2) == 0; ++arg) {
    std::string flag = argv[arg];
    if (flag == "--inspect") {
      inspect_only = true;
    } else if (flag == "--force") {
      options.force = true;
    } else if (flag == "--no-escalate") {
      options.escalate = false;
    } else if (flag == "--no-nudge") {
      options.interrupt_futex_wait = false;
    } else if (flag == "--wait-file" && arg + 1 < argc) {
      wait_file = argv[++arg];
    } else if (flag == "--deadline-ms" && arg + 1 < argc) {
      options.deadline = std::chrono::milliseconds(std::strtol(argv[++arg], nullptr, 10));
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[arg]);
      return 2;
    }
  }
  if (arg >= argc || (!inspect_only && arg + 1 >= argc)) {
    std::fprintf(stderr,
                 "usage: %s [--inspect] [--force] [--no-escalate] [--no-nudge] "
                 "[--wait-file PATH] [--deadline-ms N] PID [BOOTSTRAP]\n",
                 argv[0]);
    return 2;
  }
  int pid = static_cast<int>(std::strtol(argv[arg], nullptr, 10));
  if (inspect_only) {
    auto info = inspect_interpreter(pid);
    if (!info) {
      std::fprintf(stderr, "error: %s\n", info.error().message.c_str());
      return 1;
    }
    std::printf("pid=%d python=%s source=%s path=%s shared=%d bias=0x%llx main=%s debug_offsets=%d\n", info->pid,
                info->version.text().c_str(), info->version_source.c_str(), info->path.c_str(),
                info->shared_library ? 1 : 0, static_cast<unsigned long long>(info->load_bias),
                syscall_name(info->main_thread_syscall).c_str(), info->has_debug_offsets ? 1 : 0);
    return 0;
  }
  if (!wait_file.empty()) {
    options.is_done = [wait_file] {
      struct stat st {};
      return ::stat(wait_file.c_str(), &st) == 0;
    };
  }
  auto outcome = inject(pid, argv[arg + 1], options);
  if (!outcome) {
    std::fprintf(stderr, "error: %s\n", outcome.error().message.c_str());
    return 1;
  }
  std::printf("injected pid=%d python=%s method=%s confirmed=%d\n", pid, outcome->info.version.text().c_str(),
              method_name(outcome->method), outcome->confirmed ? 1 : 0);
  return 0;
}
