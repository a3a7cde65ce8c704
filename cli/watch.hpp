// `pyhot watch PID MODULE [CLASS] METHOD`: one block per call of a live
// function (arguments, return value or exception, time), streamed from the
// target as it happens, through instrumentation that is a patch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyhot::cli {

struct WatchCommandOptions {
  int pid = 0;
  std::vector<std::string> target;  // MODULE [CLASS] METHOD, or one module.qualname
  std::int64_t count = 0;           // -n: stop after this many matching calls; 0: until stopped
  std::string filter;
  std::vector<std::string> exprs;
  bool exceptions = false;
  double duration_seconds = 0;  // 0: until Ctrl-C or -n
  int depth = 3;
  int length = 120;
  bool json = false;
  bool force = false;
  double lease_seconds = 5;
};
int run_watch(const WatchCommandOptions& options);

}  // namespace pyhot::cli
