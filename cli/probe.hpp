// `pyhot probe PID FILE:LINE`: at a line of a live function, before it runs,
// print expressions or its locals, or run code in its scope; `pyhot probe
// PID MODULE [CLASS] FUNCTION --var NAME`: every value assigned to a
// variable, with its line. Probes the agent places in the syntax tree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyhot::cli {

struct ProbeCommandOptions {
  int pid = 0;
  std::vector<std::string> target;  // FILE:LINE, or MODULE [CLASS] FUNCTION with --var
  std::vector<std::string> prints;
  bool locals = false;
  std::string code;
  std::string var;
  std::string filter;
  std::int64_t count = 0;
  double duration_seconds = 0;
  int depth = 3;
  int length = 120;
  bool json = false;
  bool force = false;
  double lease_seconds = 5;
};
int run_probe(const ProbeCommandOptions& options);

}  // namespace pyhot::cli
