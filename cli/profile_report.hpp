// What `pyhot profile` prints and writes: the call tree per process and
// thread as a table, JSON, folded stacks, speedscope's file format and a
// self-contained flame graph SVG.
#pragma once

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loader/agent_api.hpp"

namespace pyhot::cli {

struct ProfiledFunction {
  std::string name;  // module.qualname
  std::string file;
  std::uint32_t line = 0;
  // --lines: the lines shown (the function's, or those of FILE:FIRST-LAST
  // in it) and the function's text, from its def line on.
  std::uint32_t first_shown = 0;
  std::uint32_t last_shown = 0;
  std::vector<std::string> text{};
  // FILE:FIRST-LAST left some of its lines out: % Time is of the lines shown.
  bool part = false;
};

// One process's profile: the collector's data and what its probe ids are.
struct ProcessProfile {
  int pid = 0;
  loader::ProfileData data;
  std::map<int, ProfiledFunction> functions;  // by probe id
  std::vector<std::string> changed;           // reloaded while profiled, the new code not profiled
  std::vector<std::string> reprofiled;        // reloaded while profiled, the new code profiled since
  std::map<std::string, int> members;         // threads in each group (group_threads)
  bool lines = false;                         // --lines: data.line_functions
};

// Threads named as threading names them by default ("Thread-12", "Thread-12
// (process_request_thread)": a thread per request) are one group, reported
// as "Thread-* (process_request_thread)" with their trees added up; threads
// named by the program stay apart. `threads` of a group counts its members.
loader::ProfileData group_threads(const loader::ProfileData& data, std::map<std::string, int>* members = nullptr);

// "process 4510, thread MainThread" and the tree of each thread: hits,
// total ms, ms per hit, max ms, self ms (and `raised` when any call exited
// by an exception), children by total time.
void print_profile(std::ostream& out, const ProcessProfile& profile);
// One row per function (all threads), by self time: --live.
void print_flat(std::ostream& out, const ProcessProfile& profile);
// What --live prints each second: print_flat, or with --lines the line
// tables so far.
void print_live(std::ostream& out, const ProcessProfile& profile);
// --lines, in line_profiler's layout: per timed function, a header and per
// line of it: hits, total ms, ms per hit, % of the function's time (of the
// lines shown, when FILE:FIRST-LAST left some out: the header says so), text.
void print_line_profile(std::ostream& out, const ProcessProfile& profile);
nlohmann::json profile_json(const std::vector<ProcessProfile>& profiles);
// Brendan Gregg's folded stacks: `thread;f;g <self microseconds>`, each
// stack under `process N;` when there are several (or `by_process`).
std::string collapsed_stacks(const std::vector<ProcessProfile>& profiles, bool by_process = false);
// https://www.speedscope.app/file-format-schema.json: one sampled profile
// per thread, weights in milliseconds of self time.
nlohmann::json speedscope_document(const std::vector<ProcessProfile>& profiles);
// A flame graph of self time through the call tree (hover, click to zoom,
// search), no external file or program needed.
std::string flamegraph_svg(const std::vector<ProcessProfile>& profiles, const std::string& title);

// 1385.6, 14.2, 0.92, 0.035: a millisecond figure as the table prints it.
std::string format_ms(double milliseconds);

}  // namespace pyhot::cli
