// One function per pyhot command. Each returns the process exit code:
// 0 done, 1 refused or failed (nothing changed in the target), 2 usage.
#pragma once

#include <string>
#include <vector>

namespace pyhot::cli {

inline constexpr int k_exit_done = 0;
inline constexpr int k_exit_failed = 1;
inline constexpr int k_exit_usage = 2;

struct DefsOptions {
  std::string file;
  bool json = false;
};
int run_defs(const DefsOptions& options);

struct CheckOptions {
  std::vector<std::string> paths;  // OLD NEW, or REV, or empty with --staged
  bool staged = false;
  bool json = false;
};
int run_check(const CheckOptions& options);

struct ReloadOptions {
  int pid = 0;
  std::vector<std::string> target;  // FILE.py | MODULE | MODULE [CLASS] METHOD
  bool verbose = false;
  bool dry_run = false;
  bool json = false;
  bool tree = false;
  bool force = false;
  std::string assume_imported;  // a git revision whose text is taken as the imported one
  bool allow_empty = false;     // reload a file that deletes every definition
};
int run_reload(const ReloadOptions& options);

struct ProcessOptions {
  int pid = 0;
  std::vector<std::string> arguments;
  bool json = false;
  bool tree = false;
  bool force = false;
};
int run_module(const ProcessOptions& options);  // arguments: FILE
int run_history(const ProcessOptions& options);
int run_revert(const ProcessOptions& options);  // arguments: [ID]
int run_ps(bool json);
int run_agent_path();

struct AutoreloadOptions {
  int pid = 0;
  std::vector<std::string> paths;  // files and directories; empty: the target's own modules
  int debounce_ms = 20;
  bool once = false;  // apply what differs from the live code, then exit
  bool json = false;
  // Apply a save that deletes every definition of its module; by default
  // it is taken for a file caught half written and refused.
  bool allow_empty = false;
  bool force = false;
  // Set by `pyhot run --autoreload`: pid is pyhot's child; signals sent to
  // pyhot go to it, and the exit code is the child's.
  bool child = false;
  // Also every Python process below pid (pre-fork servers): each save is
  // one labelled patch across the tree (cli/process_tree.hpp).
  bool tree = false;
};
int run_autoreload(const AutoreloadOptions& options);

struct BundleOptions {
  std::vector<std::string> files;
  std::string output;             // -o patch.pyhot
  std::string revision = "HEAD";  // the texts expected live are the files at this git revision
  bool json = false;
};
int run_bundle(const BundleOptions& options);

struct ApplyOptions {
  int pid = 0;
  std::string bundle;
  bool tree = false;
  bool dry_run = false;
  bool json = false;
  bool force = false;
};
int run_apply(const ApplyOptions& options);

struct RunOptions {
  std::vector<std::string> command;  // python app.py args...
  bool autoreload = false;
  int debounce_ms = 20;
  bool allow_empty = false;
};
int run_program(const RunOptions& options);

struct StackOptions {
  int pid = 0;
  bool tasks = false;   // --async
  bool locals = false;  // --locals
  bool json = false;
  bool force = false;
  // How long the agent has to answer before pyhot says which thread keeps
  // it from running and reads the stacks from outside where it can.
  int timeout_ms = 3000;
};
int run_stack(const StackOptions& options);

struct InspectOptions {
  int pid = 0;
  std::string path;  // MODULE[.NAME.ATTR...] or MODULE.CLASS
  std::string expr;  // "" none
  int depth = 1;
  int limit = 20;  // instances
  bool json = false;
  bool force = false;
};
int run_inspect(const InspectOptions& options);
int run_instances(const InspectOptions& options);

}  // namespace pyhot::cli
