#include "cli/profile.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/profile_process.hpp"
#include "cli/profile_report.hpp"

namespace pyhot::cli {

namespace {

using Clock = std::chrono::steady_clock;

// Reads every second (which renews the leases) until the duration is over or
// pyhot is interrupted; an error when the instrumentation is gone meanwhile.
Result<Done> wait_profiling(ProcessProfiler& profiler, const ProfileOptions& options) {
  auto end = Clock::now() +
             std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.duration_seconds));
  auto every = profile_read_interval(options);
  while (!interrupted() && Clock::now() < end) {
    pause_until(std::min(end, Clock::now() + every));
    if (interrupted() || Clock::now() >= end) {
      break;
    }
    auto read = profiler.read(options.live);
    if (!read) {
      return read.error();
    }
    if (options.live) {
      if (isatty(1)) {
        std::cout << "\x1b[H\x1b[2J";
      }
      print_live(std::cout, *read);
      std::cout << std::flush;
    }
  }
  return k_done;
}

}  // namespace

double parse_duration(const std::string& text) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !(value > 0)) {
    return -1;
  }
  std::string unit(end);
  if (unit.empty() || unit == "s") {
    return value;
  }
  if (unit == "ms") {
    return value / 1000;
  }
  if (unit == "m") {
    return value * 60;
  }
  return -1;
}

int run_profile(const ProfileOptions& options) {
  if (auto why = line_selection_error(options); !why.empty()) {
    print_error(why, options.json);
    return k_exit_usage;
  }
  if (options.tree) {
    return run_profile_tree(options);
  }
  InterruptScope interrupts;
  auto started = ProcessProfiler::start(options.pid, options);
  for (const auto& note : started.notes) {
    std::cerr << "pyhot: " << note << "\n";
  }
  if (!started.profiler) {
    print_error(started.error.message, options.json);
    return k_exit_failed;
  }
  auto& profiler = *started.profiler;
  if (!options.json && !options.live) {
    std::cerr << (options.lines ? "Timing the lines of " : "Profiling ") << profiler.function_count()
              << (profiler.function_count() == 1 ? " function" : " functions") << " of process " << profiler.pid()
              << (options.duration_seconds < 1e9 ? " for " + format_ms(options.duration_seconds) + " s" : "")
              << " (Ctrl-C to stop)\n";
  }
  auto waited = wait_profiling(profiler, options);
  auto removed = profiler.finish();
  if (!removed) {
    std::string why = !waited ? waited.error().message : removed.error().message;
    print_error("the profile was lost: " + why + " (the agent removed the instrumentation)", options.json);
    return k_exit_failed;
  }
  std::vector<ProcessProfile> profiles{std::move(*removed)};
  if (auto written = write_profile_files(options, profiles); !written) {
    print_error(written.error().message, options.json);
    return k_exit_failed;
  }
  if (options.json) {
    print_json(profile_json(profiles));
  } else {
    print_profile(std::cout, profiles.front());
  }
  return k_exit_done;
}

}  // namespace pyhot::cli
