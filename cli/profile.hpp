// `pyhot profile PID PATTERN...`: time chosen functions of a live process
// through instrumentation that is a patch, then remove it without a trace.
#pragma once

#include <string>
#include <vector>

namespace pyhot::cli {

struct ProfileOptions {
  int pid = 0;
  std::vector<std::string> patterns;
  // --lines: per-line timing of the function `patterns` names (MODULE
  // [CLASS] FUNCTION), or of the functions holding FILE:FIRST-LAST.
  bool lines = false;
  double duration_seconds = 10;
  bool json = false;
  bool live = false;
  bool force = false;
  bool tree = false;       // also every Python process below pid, each reported apart
  std::string flamegraph;  // .svg to write
  std::string speedscope;  // .json to write
  std::string collapsed;   // folded stacks to write
  // The agent removes the instrumentation by itself when pyhot has not
  // read it for this long (pyhot was killed, or lost the connection).
  double lease_seconds = 5;
};
int run_profile(const ProfileOptions& options);
// --tree (cli/profile_tree.cpp).
int run_profile_tree(const ProfileOptions& options);

// Why the words cannot be a --lines selection, or "" (a usage error).
std::string line_selection_error(const ProfileOptions& options);

// "10", "10s", "1.5s", "500ms", "2m" -> seconds; negative when it is none.
double parse_duration(const std::string& text);

}  // namespace pyhot::cli
