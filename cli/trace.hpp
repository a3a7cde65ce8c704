// `pyhot trace PID MODULE [CLASS] METHOD`: for each call of a live function,
// the tree of the calls it made with their times. A profile hook is set
// only in the calling thread and only while a traced call runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/stream_command.hpp"

namespace pyhot::cli {

struct TraceCommandOptions : StreamCommandOptions {
  std::vector<std::string> target;  // MODULE [CLASS] METHOD
  double min_ms = 0;
  int depth = 20;
};
int run_trace(const TraceCommandOptions& options);

}  // namespace pyhot::cli
