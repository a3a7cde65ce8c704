// `pyhot probe PID FILE:LINE`: at a line of a live function, before it runs,
// print expressions or its locals, or run code in its scope; `pyhot probe
// PID MODULE [CLASS] FUNCTION --var NAME`: every value assigned to a
// variable, with its line. Probes the agent places in the syntax tree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/stream_command.hpp"

namespace pyhot::cli {

struct ProbeCommandOptions : StreamCommandOptions {
  std::vector<std::string> target;  // FILE:LINE, or MODULE [CLASS] FUNCTION with --var
  std::vector<std::string> prints;
  bool locals = false;
  std::string code;
  std::string var;
  std::string filter;
  int depth = 3;
  int length = 120;
};
int run_probe(const ProbeCommandOptions& options);

}  // namespace pyhot::cli
