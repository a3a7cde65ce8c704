#include "cli/profile.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>

#include "cli/commands.hpp"
#include "cli/instrument_session.hpp"
#include "cli/output.hpp"
#include "cli/profile_report.hpp"
#include "cli/profile_select.hpp"
#include "loader/agent_api.hpp"
#include "loader/agent_client.hpp"
#include "loader/process.hpp"
#include "patch/instrumentation.hpp"
#include "util/file.hpp"

namespace pyhot::cli {

namespace {

using Clock = std::chrono::steady_clock;

// Reads renew the lease: at least three of them fit in it.
constexpr double k_longest_read_interval = 1.0;

struct Prepared {
  loader::InstrumentRequest request;
  std::map<int, ProfiledFunction> functions;
};

Result<Prepared> prepare(FunctionCatalog& catalog, const std::vector<ChosenFunction>& chosen, double lease,
                         int first_probe = 1) {
  Prepared out;
  out.request.lease_seconds = lease;
  out.request.marker = new_probe_marker();
  int next = first_probe;
  for (const auto& function : chosen) {
    out.functions[next++] = {function.name(), function.file, function.definition->def_line};
  }
  if (!add_probe_units(catalog, chosen, patch::ProbeShape::calls, first_probe, "not profiled", out.request)) {
    return make_error(ErrorKind::refused, "none of the functions chosen can be profiled");
  }
  return out;
}

Result<Done> write_outputs(const ProfileOptions& options, const std::vector<ProcessProfile>& profiles) {
  if (!options.flamegraph.empty()) {
    auto title = "pyhot profile " + std::to_string(options.pid);
    if (auto written = util::write_file(options.flamegraph, flamegraph_svg(profiles, title)); !written) {
      return written.error();
    }
  }
  if (!options.speedscope.empty()) {
    if (auto written = util::write_file(options.speedscope, speedscope_document(profiles).dump() + "\n"); !written) {
      return written.error();
    }
  }
  if (!options.collapsed.empty()) {
    if (auto written = util::write_file(options.collapsed, collapsed_stacks(profiles)); !written) {
      return written.error();
    }
  }
  return k_done;
}

// The instrumentations of one profile: the first, and one more for the
// functions reloaded meanwhile (their new code, profiled from then on).
struct Sessions {
  std::vector<int> ids;
  std::map<int, ProfiledFunction> functions;  // by probe id, over all sessions
  std::set<std::string> reprofiled;           // reloaded, and their new code instrumented
  std::set<std::string> noticed;              // reloaded, whether or not re-instrumented
};

// Instruments the new code of functions a reload replaced: the text the
// agent recorded for the reload, parsed again.
void reprofile(loader::Agent& agent, const std::vector<std::string>& names, const ProfileOptions& options,
               Sessions& sessions) {
  std::vector<std::string> fresh;
  for (const auto& name : names) {
    if (sessions.noticed.insert(name).second) {
      fresh.push_back(name);
    }
  }
  if (fresh.empty()) {
    return;
  }
  auto modules = agent.modules();
  if (!modules) {
    return;
  }
  FunctionCatalog catalog(*modules, live_module_text(agent));
  auto not_profiled = [&](const Error& error) {
    std::cerr << "pyhot: the new code of " << fresh.front() << (fresh.size() > 1 ? " and others" : "")
              << " is not profiled: " << error.message << "\n";
  };
  auto chosen = catalog.select(fresh);
  if (!chosen) {
    return not_profiled(chosen.error());
  }
  int first = sessions.functions.empty() ? 1 : sessions.functions.rbegin()->first + 1;
  auto prepared = prepare(catalog, *chosen, options.lease_seconds, first);
  if (!prepared) {
    return not_profiled(prepared.error());
  }
  auto installed = agent.instrument(prepared->request);
  if (!installed) {
    return not_profiled(installed.error());
  }
  sessions.ids.push_back(installed->session);
  for (auto& [probe, function] : prepared->functions) {
    sessions.functions[probe] = function;
    sessions.reprofiled.insert(function.name);
  }
}

// Reads every second (which renews the leases) until the duration is over or
// pyhot is interrupted; an error when the instrumentation is gone meanwhile.
Result<Done> wait_profiling(loader::Agent& agent, Sessions& sessions, const ProfileOptions& options) {
  auto end = Clock::now() +
             std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.duration_seconds));
  auto every = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::min(k_longest_read_interval, options.lease_seconds / 3)));
  while (!interrupted() && Clock::now() < end) {
    pause_until(std::min(end, Clock::now() + every));
    if (interrupted() || Clock::now() >= end) {
      break;
    }
    auto read = agent.instrument_read(sessions.ids.front(), options.live);
    if (!read) {
      return read.error();
    }
    for (std::size_t i = 1; i < sessions.ids.size(); ++i) {
      if (auto renewed = agent.instrument_read(sessions.ids[i], false); !renewed) {
        return renewed.error();
      }
    }
    reprofile(agent, read->changed, options, sessions);
    if (options.live) {
      if (isatty(1)) {
        std::cout << "\x1b[H\x1b[2J";
      }
      print_flat(std::cout, {options.pid, read->data, sessions.functions, {}, {}, {}});
      std::cout << std::flush;
    }
  }
  return k_done;
}

// Removes every session, newest first (a reloaded function's second
// instrumentation is over its first); one profile of them all.
Result<ProcessProfile> remove_all(loader::Agent& agent, const Sessions& sessions) {
  ProcessProfile profile{0, {}, sessions.functions, {}, {}, {}};
  for (auto id = sessions.ids.rbegin(); id != sessions.ids.rend(); ++id) {
    auto removed = agent.instrument_remove(*id);
    if (!removed) {
      return removed.error();
    }
    profile.pid = removed->pid;
    auto& data = profile.data;
    // Threads of one name are added up by group_threads, across sessions too.
    for (auto& thread : removed->data.threads) {
      data.threads.push_back(std::move(thread));
    }
    data.lost += removed->data.lost;
    data.started = removed->data.started;
    data.ended = std::max(data.ended, removed->data.ended);
    for (const auto& name : removed->changed) {
      if (!sessions.reprofiled.contains(name)) {
        profile.changed.push_back(name);
      }
    }
  }
  profile.reprofiled.assign(sessions.reprofiled.begin(), sessions.reprofiled.end());
  return profile;
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
  auto process = loader::require_python_process(options.pid);
  if (!process) {
    print_error(process.error().message, options.json);
    return k_exit_failed;
  }
  loader::ConnectOptions connect;
  connect.force = options.force;
  auto client = loader::connect_to_agent(*process, connect);
  if (!client) {
    print_error(client.error().message, options.json);
    return k_exit_failed;
  }
  loader::Agent agent(**client);
  auto modules = agent.modules();
  if (!modules) {
    print_error(modules.error().message, options.json);
    return k_exit_failed;
  }
  FunctionCatalog catalog(*modules, live_module_text(agent));
  auto chosen = catalog.select(options.patterns);
  if (!chosen) {
    print_error(chosen.error().message, options.json);
    return k_exit_failed;
  }
  auto prepared = prepare(catalog, *chosen, options.lease_seconds);
  if (!prepared) {
    print_error(prepared.error().message, options.json);
    return k_exit_failed;
  }
  InterruptScope interrupts;
  auto installed = agent.instrument(prepared->request);
  if (!installed) {
    print_error("nothing was instrumented: " + installed.error().message, options.json);
    return k_exit_failed;
  }
  for (const auto& skipped : installed->skipped) {
    std::cerr << "pyhot: not profiled: " << skipped.module << "." << skipped.qualname << ": " << skipped.message
              << "\n";
  }
  if (!options.json && !options.live) {
    std::cerr << "Profiling " << installed->functions << (installed->functions == 1 ? " function" : " functions")
              << " of process " << installed->pid
              << (options.duration_seconds < 1e9 ? " for " + format_ms(options.duration_seconds) + " s" : "")
              << " (Ctrl-C to stop)\n";
  }
  Sessions sessions{{installed->session}, prepared->functions, {}, {}};
  auto waited = wait_profiling(agent, sessions, options);
  auto removed = remove_all(agent, sessions);
  if (!removed) {
    std::string why = !waited ? waited.error().message : removed.error().message;
    print_error("the profile was lost: " + why + " (the agent removed the instrumentation)", options.json);
    return k_exit_failed;
  }
  ProcessProfile profile = std::move(*removed);
  auto data = std::move(profile.data);
  profile.data = group_threads(data, &profile.members);
  std::vector<ProcessProfile> profiles{std::move(profile)};
  if (auto written = write_outputs(options, profiles); !written) {
    print_error(written.error().message, options.json);
    return k_exit_failed;
  }
  if (options.json) {
    print_json(profile_json(profiles));
  } else {
    for (const auto& profile : profiles) {
      print_profile(std::cout, profile);
    }
  }
  return k_exit_done;
}

}  // namespace pyhot::cli
