// `pyhot watch PID MODULE [CLASS] METHOD`: one block per call of a live
// function (arguments, return value or exception, time), streamed from the
// target as it happens, through instrumentation that is a patch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/stream_command.hpp"

namespace pyhot::cli {

struct WatchCommandOptions : StreamCommandOptions {
  std::vector<std::string> target;  // MODULE [CLASS] METHOD, or one module.qualname
  std::string filter;
  std::vector<std::string> exprs;
  bool exceptions = false;
  int depth = 3;
  int length = 120;
};
int run_watch(const WatchCommandOptions& options);

}  // namespace pyhot::cli
