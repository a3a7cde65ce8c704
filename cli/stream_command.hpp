// What every command that streams events from live instrumentation (watch,
// probe, trace) is given besides its own options.
#pragma once

#include <cstdint>

namespace pyhot::cli {

struct StreamCommandOptions {
  int pid = 0;
  std::int64_t count = 0;       // -n: stop after this many events; 0: until stopped
  double duration_seconds = 0;  // 0: until Ctrl-C or -n
  bool json = false;
  bool force = false;
  double lease_seconds = 5;  // the agent removes the instrumentation when not renewed for this long
};

}  // namespace pyhot::cli
