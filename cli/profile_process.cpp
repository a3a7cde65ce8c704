#include "cli/profile_process.hpp"

#include <time.h>

#include <algorithm>
#include <iostream>

#include "cli/instrument_session.hpp"
#include "cli/live_process.hpp"
#include "cli/profile_select.hpp"
#include "patch/compilation_unit.hpp"
#include "patch/instrumentation.hpp"
#include "util/file.hpp"

namespace pyhot::cli {

namespace {

using Clock = std::chrono::steady_clock;

// Reads renew the lease: at least three of them fit in it.
constexpr double k_longest_read_interval = 1.0;

volatile sig_atomic_t g_interrupted = 0;

void note_interrupt(int) { g_interrupted = 1; }

struct Prepared {
  loader::InstrumentRequest request;
  std::map<int, ProfiledFunction> functions;
  std::vector<std::string> notes;
};

Result<Prepared> prepare(FunctionCatalog& catalog, const std::vector<ChosenFunction>& chosen, double lease,
                         int first_probe = 1) {
  Prepared out;
  out.request.lease_seconds = lease;
  out.request.marker = new_probe_marker();
  std::map<std::string, std::vector<patch::ProbeSite>> sites;
  std::vector<std::string> order;
  int next = first_probe;
  for (const auto& function : chosen) {
    if (!sites.contains(function.module)) {
      order.push_back(function.module);
    }
    sites[function.module].push_back({function.definition, next});
    out.functions[next] = {function.name(), function.file, function.definition->def_line};
    ++next;
  }
  for (const auto& module : order) {
    const auto* source = catalog.source(module);
    auto units = patch::instrument_units(*source, sites[module], out.request.marker, patch::ProbeShape::calls);
    for (const auto& skipped : units.skipped) {
      out.notes.push_back("not profiled: " + module + "." + skipped.definition->qualname + ": " + skipped.reason);
    }
    if (units.units.empty()) {
      continue;
    }
    out.request.modules.push_back({module, source->path, patch::future_features(*source), std::move(units.units)});
  }
  if (out.request.modules.empty()) {
    return make_error(ErrorKind::refused, "none of the functions chosen can be profiled");
  }
  return out;
}

}  // namespace

ProfileInterrupts::ProfileInterrupts() {
  g_interrupted = 0;
  struct sigaction action {};
  action.sa_handler = note_interrupt;
  sigemptyset(&action.sa_mask);
  for (int i = 0; i < 3; ++i) {
    sigaction(k_signals[i], &action, &m_previous[i]);
  }
}

ProfileInterrupts::~ProfileInterrupts() {
  for (int i = 0; i < 3; ++i) {
    sigaction(k_signals[i], &m_previous[i], nullptr);
  }
}

bool ProfileInterrupts::interrupted() { return g_interrupted != 0; }

void pause_profile_until(Clock::time_point until) {
  while (!g_interrupted && Clock::now() < until) {
    auto left = std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(100));
    auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec wait{static_cast<time_t>(nanos / 1000000000), static_cast<long>(nanos % 1000000000)};
    nanosleep(&wait, nullptr);
  }
}

Clock::duration profile_read_interval(const ProfileOptions& options) {
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::min(k_longest_read_interval, options.lease_seconds / 3)));
}

Result<Done> write_profile_files(const ProfileOptions& options, const std::vector<ProcessProfile>& profiles) {
  if (!options.flamegraph.empty()) {
    auto title = "pyhot profile " + std::to_string(options.pid) + (options.tree ? " --tree" : "");
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
    if (auto written = util::write_file(options.collapsed, collapsed_stacks(profiles, options.tree)); !written) {
      return written.error();
    }
  }
  return k_done;
}

ProcessProfiler::ProcessProfiler(int pid, std::unique_ptr<loader::AgentClient> client, const ProfileOptions& options)
    : m_pid(pid), m_client(std::move(client)), m_agent(*m_client), m_options(options) {}

ProfileStart ProcessProfiler::start(int pid, const ProfileOptions& options) {
  ProfileStart out;
  auto client = open_agent(pid, options.force);
  if (!client) {
    out.error = client.error();
    return out;
  }
  std::unique_ptr<ProcessProfiler> profiler(new ProcessProfiler(pid, std::move(*client), options));
  auto modules = profiler->m_agent.modules();
  if (!modules) {
    out.error = modules.error();
    return out;
  }
  FunctionCatalog catalog(*modules, live_module_text(profiler->m_agent));
  auto chosen = catalog.select(options.patterns);
  if (!chosen) {
    out.error = chosen.error();
    out.unmatched = chosen.error().kind == ErrorKind::not_found;
    return out;
  }
  auto prepared = prepare(catalog, *chosen, options.lease_seconds);
  if (!prepared) {
    out.error = prepared.error();
    return out;
  }
  out.notes = std::move(prepared->notes);
  auto installed = profiler->m_agent.instrument(prepared->request);
  if (!installed) {
    out.error = make_error(installed.error().kind, "nothing was instrumented: " + installed.error().message);
    return out;
  }
  for (const auto& skipped : installed->skipped) {
    out.notes.push_back("not profiled: " + skipped.module + "." + skipped.qualname + ": " + skipped.message);
  }
  profiler->m_pid = installed->pid;
  profiler->m_function_count = installed->functions;
  profiler->m_sessions.push_back(installed->session);
  profiler->m_functions = std::move(prepared->functions);
  out.profiler = std::move(profiler);
  return out;
}

// Instruments the new code of functions a reload replaced: the text the
// agent recorded for the reload, parsed again.
void ProcessProfiler::reprofile(const std::vector<std::string>& names) {
  std::vector<std::string> fresh;
  for (const auto& name : names) {
    if (m_noticed.insert(name).second) {
      fresh.push_back(name);
    }
  }
  if (fresh.empty()) {
    return;
  }
  auto modules = m_agent.modules();
  if (!modules) {
    return;
  }
  FunctionCatalog catalog(*modules, live_module_text(m_agent));
  auto not_profiled = [&](const Error& error) {
    std::cerr << "pyhot: the new code of " << fresh.front() << (fresh.size() > 1 ? " and others" : "")
              << " is not profiled: " << error.message << "\n";
  };
  auto chosen = catalog.select(fresh);
  if (!chosen) {
    return not_profiled(chosen.error());
  }
  int first = m_functions.empty() ? 1 : m_functions.rbegin()->first + 1;
  auto prepared = prepare(catalog, *chosen, m_options.lease_seconds, first);
  if (!prepared) {
    return not_profiled(prepared.error());
  }
  auto installed = m_agent.instrument(prepared->request);
  if (!installed) {
    return not_profiled(installed.error());
  }
  m_sessions.push_back(installed->session);
  for (auto& [probe, function] : prepared->functions) {
    m_functions[probe] = function;
    m_reprofiled.insert(function.name);
  }
}

Result<ProcessProfile> ProcessProfiler::read(bool with_data) {
  auto read = m_agent.instrument_read(m_sessions.front(), with_data);
  if (!read) {
    return read.error();
  }
  for (std::size_t i = 1; i < m_sessions.size(); ++i) {
    if (auto renewed = m_agent.instrument_read(m_sessions[i], false); !renewed) {
      return renewed.error();
    }
  }
  reprofile(read->changed);
  ProcessProfile profile{m_pid, {}, m_functions, {}, {}, {}};
  if (with_data) {
    profile.data = group_threads(read->data, &profile.members);
  }
  return profile;
}

Result<ProcessProfile> ProcessProfiler::finish() {
  ProcessProfile profile{m_pid, {}, m_functions, {}, {}, {}};
  loader::ProfileData data;
  for (auto id = m_sessions.rbegin(); id != m_sessions.rend(); ++id) {
    auto removed = m_agent.instrument_remove(*id);
    if (!removed) {
      return removed.error();
    }
    profile.pid = removed->pid;
    // Threads of one name are added up by group_threads, across sessions too.
    for (auto& thread : removed->data.threads) {
      data.threads.push_back(std::move(thread));
    }
    data.lost += removed->data.lost;
    data.started = removed->data.started;
    data.ended = std::max(data.ended, removed->data.ended);
    for (const auto& name : removed->changed) {
      if (!m_reprofiled.contains(name)) {
        profile.changed.push_back(name);
      }
    }
  }
  m_sessions.clear();
  profile.data = group_threads(data, &profile.members);
  profile.reprofiled.assign(m_reprofiled.begin(), m_reprofiled.end());
  return profile;
}

}  // namespace pyhot::cli
