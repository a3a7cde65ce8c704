// `pyhot run -- python app.py`: start a program with the agent already in it.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "loader/agent_client.hpp"

namespace pyhot::cli {

int run_program(const RunOptions& options) {
  if (options.command.empty()) {
    print_error("run needs a command: pyhot run -- python app.py [args]", false);
    return k_exit_usage;
  }
  auto dir = loader::agent_import_directory();
  if (!dir) {
    print_error(dir.error().message, false);
    return k_exit_failed;
  }
  // The agent directory holds a sitecustomize that starts the agent when
  // PYHOT_AGENT_AUTOSTART is set, so any way of starting Python works
  // (python app.py, python -m flask, gunicorn) and forked workers too.
  std::string path = *dir;
  if (const char* existing = std::getenv("PYTHONPATH"); existing != nullptr && *existing != '\0') {
    path += ":" + std::string(existing);
  }
  setenv("PYTHONPATH", path.c_str(), 1);
  setenv("PYHOT_AGENT_AUTOSTART", "1", 1);

  std::vector<char*> argv;
  for (const auto& argument : options.command) {
    argv.push_back(const_cast<char*>(argument.c_str()));
  }
  argv.push_back(nullptr);
  if (!options.autoreload) {
    execvp(argv[0], argv.data());
    print_error("cannot run " + options.command[0] + ": " + std::strerror(errno), false);
    return k_exit_failed;
  }
  pid_t child = fork();
  if (child < 0) {
    print_error(std::string("cannot fork: ") + std::strerror(errno), false);
    return k_exit_failed;
  }
  if (child == 0) {
    execvp(argv[0], argv.data());
    std::cerr << "pyhot: cannot run " << options.command[0] << ": " << std::strerror(errno) << "\n";
    _exit(127);
  }
  // The watch loop passes SIGINT/SIGTERM on to the child and returns its exit status.
  AutoreloadOptions autoreload;
  autoreload.pid = child;
  autoreload.debounce_ms = options.debounce_ms;
  autoreload.allow_empty = options.allow_empty;
  autoreload.child = true;
  autoreload.tree = true;  // a pre-fork server's workers get every save too
  return run_autoreload(autoreload);
}

}  // namespace pyhot::cli
