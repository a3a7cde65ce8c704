// `pyhot trace PID MODULE [CLASS] METHOD`: for each call of a live function,
// the tree of the calls it made with their times. A profile hook is set
// only in the calling thread and only while a traced call runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyhot::cli {

struct TraceCommandOptions {
  int pid = 0;
  std::vector<std::string> target;  // MODULE [CLASS] METHOD
  std::int64_t count = 0;
  double min_ms = 0;
  int depth = 20;
  double duration_seconds = 0;
  bool json = false;
  bool force = false;
  double lease_seconds = 5;
};
int run_trace(const TraceCommandOptions& options);

}  // namespace pyhot::cli
