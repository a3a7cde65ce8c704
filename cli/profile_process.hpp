// One process under `pyhot profile`: its agent, the instrumentation made for
// the patterns (and for the new code of functions reloaded meanwhile), read
// to renew its lease, and removed at the end into the process's profile.
#pragma once

#include <signal.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cli/interrupts.hpp"
#include "cli/profile.hpp"
#include "cli/profile_report.hpp"
#include "loader/agent_api.hpp"
#include "loader/agent_client.hpp"
#include "util/result.hpp"

namespace pyhot::cli {

class ProcessProfiler;

// How often a profile reads each process: at least three reads fit in the lease.
std::chrono::steady_clock::duration profile_read_interval(const ProfileOptions& options);

// --flamegraph, --speedscope, --collapsed.
Result<Done> write_profile_files(const ProfileOptions& options, const std::vector<ProcessProfile>& profiles);

// How starting to profile one process went.
struct ProfileStart {
  std::unique_ptr<ProcessProfiler> profiler;  // null when nothing was instrumented
  Error error;
  bool unmatched = false;          // no pattern names a function of this process
  std::vector<std::string> notes;  // "not profiled: module.f: why"
};

class ProcessProfiler {
 public:
  // Connects to the agent of `pid`, selects what the patterns name and
  // swaps the instrumented code in.
  static ProfileStart start(int pid, const ProfileOptions& options);

  int pid() const { return m_pid; }
  int function_count() const { return m_function_count; }

  // Renews the leases; `with_data`: the calls collected so far, threads
  // grouped (--live). Instruments the new code of functions a reload
  // replaced (a failure to do so is a note on stderr).
  Result<ProcessProfile> read(bool with_data);

  // Removes every instrumentation, newest first; the process's profile.
  Result<ProcessProfile> finish();

 private:
  ProcessProfiler(int pid, std::unique_ptr<loader::AgentClient> client, const ProfileOptions& options);
  void reprofile(const std::vector<std::string>& names);

  int m_pid;
  std::unique_ptr<loader::AgentClient> m_client;
  loader::Agent m_agent;
  const ProfileOptions& m_options;
  int m_function_count = 0;
  std::vector<int> m_sessions;                  // the first, then one per reprofile
  std::map<int, ProfiledFunction> m_functions;  // by probe id, over all sessions
  std::set<std::string> m_reprofiled;           // reloaded, and their new code instrumented
  std::set<std::string> m_noticed;              // reloaded, whether or not re-instrumented
};

}  // namespace pyhot::cli
