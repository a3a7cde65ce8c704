#include "cli/profile_process.hpp"

#include <time.h>

#include <algorithm>
#include <iostream>
#include <optional>
#include <set>

#include "cli/instrument_session.hpp"
#include "cli/live_process.hpp"
#include "cli/profile_select.hpp"
#include "patch/compilation_unit.hpp"
#include "patch/instrumentation.hpp"
#include "util/file.hpp"
#include "util/text.hpp"

namespace pyhot::cli {

namespace {

using Clock = std::chrono::steady_clock;

// Reads renew the lease: at least three of them fit in it.
constexpr double k_longest_read_interval = 1.0;

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

struct LineRange {
  std::string file;
  std::uint32_t first = 0;
  std::uint32_t last = 0;
};

// "app/views.py:10-40"; none when the word is not FILE:FIRST-LAST.
std::optional<LineRange> line_range(const std::string& word) {
  auto colon = word.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return std::nullopt;
  }
  std::string numbers = word.substr(colon + 1);
  auto dash = numbers.find('-');
  auto digits = [](const std::string& text) {
    return !text.empty() && text.size() < 8 && text.find_first_not_of("0123456789") == std::string::npos;
  };
  if (dash == std::string::npos || !digits(numbers.substr(0, dash)) || !digits(numbers.substr(dash + 1))) {
    return std::nullopt;
  }
  LineRange out{word.substr(0, colon), static_cast<std::uint32_t>(std::stoul(numbers.substr(0, dash))),
                static_cast<std::uint32_t>(std::stoul(numbers.substr(dash + 1)))};
  if (out.first == 0 || out.first > out.last) {
    return std::nullopt;
  }
  return out;
}

// A function whose lines are timed, and the lines shown.
struct LineChoice {
  ChosenFunction function;
  std::uint32_t first_shown = 0;
  std::uint32_t last_shown = 0;
};

// What --lines names: the functions MODULE [CLASS] FUNCTION names (all
// their lines), or those whose bodies hold lines of FILE:FIRST-LAST.
Result<std::vector<LineChoice>> select_lines(FunctionCatalog& catalog, const std::vector<std::string>& words) {
  auto range = words.size() == 1 ? line_range(words[0]) : std::nullopt;
  std::vector<LineChoice> out;
  if (!range) {
    auto chosen = catalog.select({target_pattern(words)});
    if (!chosen) {
      return chosen.error();
    }
    for (const auto& function : *chosen) {
      out.push_back({function, function.definition->def_line, function.definition->range.end_line});
    }
    return out;
  }
  auto chosen = catalog.select({range->file});
  if (!chosen) {
    return chosen.error();
  }
  const auto* source = catalog.source(chosen->front().module);
  std::set<const parser::Definition*> holding;
  auto last = std::min<std::uint32_t>(range->last, static_cast<std::uint32_t>(source->text.size() + 1));
  for (auto line = range->first; line <= last; ++line) {
    if (const auto* def = patch::function_at_line(*source, line); def != nullptr) {
      holding.insert(def);
    }
  }
  for (const auto& function : *chosen) {
    const auto* def = function.definition;
    if (holding.contains(def)) {
      out.push_back({function, std::max(range->first, def->def_line), std::min(range->last, def->range.end_line)});
    }
  }
  if (out.empty()) {
    return make_error(ErrorKind::refused, "lines " + std::to_string(range->first) + "-" + std::to_string(range->last) +
                                              " of " + range->file +
                                              " are not in a function's body (module-level code is not timed)");
  }
  return out;
}

// --lines: each function's unit (of its outermost function: nested ones
// share it) with the timing of the function for the agent to insert.
Result<Prepared> prepare_lines(FunctionCatalog& catalog, const std::vector<LineChoice>& chosen, double lease,
                               int first_probe = 1) {
  Prepared out;
  out.request.kind = "lines";
  out.request.lease_seconds = lease;
  out.request.marker = new_probe_marker();
  std::map<std::string, std::size_t> module_index;
  std::map<std::pair<std::string, std::uint32_t>, std::size_t> unit_index;  // (module, unit's first line)
  int next = first_probe;
  for (const auto& choice : chosen) {
    const auto& function = choice.function;
    const auto* source = catalog.source(function.module);
    const auto* def = function.definition;
    if (!module_index.contains(function.module)) {
      module_index[function.module] = out.request.modules.size();
      out.request.modules.push_back({function.module, source->path, patch::future_features(*source), {}});
    }
    auto& module = out.request.modules[module_index[function.module]];
    auto unit = patch::statement_probe_unit(*source, *def);
    auto key = std::make_pair(function.module, unit.unit.first_line);
    if (!unit_index.contains(key)) {
      unit_index[key] = module.units.size();
      module.units.push_back(std::move(unit));
    }
    module.units[unit_index[key]].line_timing.push_back({def->def_line, next});
    ProfiledFunction shown{
        function.name(),
        function.file,
        def->def_line,
        choice.first_shown,
        choice.last_shown,
        {},
        choice.first_shown > patch::line_of_byte(*source, def->body_byte) || choice.last_shown < def->range.end_line};
    auto lines = util::split_lines(source->text);
    for (auto line = def->def_line; line <= def->range.end_line && line <= lines.size(); ++line) {
      shown.text.emplace_back(lines[line - 1]);
    }
    out.functions[next++] = std::move(shown);
  }
  if (out.request.modules.empty()) {
    return make_error(ErrorKind::refused, "none of the functions chosen can be timed by line");
  }
  return out;
}

Result<Prepared> prepare_for(FunctionCatalog& catalog, const std::vector<std::string>& patterns,
                             const ProfileOptions& options, int first_probe, bool* unmatched = nullptr) {
  if (options.lines) {
    auto chosen = select_lines(catalog, patterns);
    if (!chosen) {
      if (unmatched != nullptr) {
        *unmatched = chosen.error().kind == ErrorKind::not_found;
      }
      return chosen.error();
    }
    return prepare_lines(catalog, *chosen, options.lease_seconds, first_probe);
  }
  auto chosen = catalog.select(patterns);
  if (!chosen) {
    if (unmatched != nullptr) {
      *unmatched = chosen.error().kind == ErrorKind::not_found;
    }
    return chosen.error();
  }
  return prepare(catalog, *chosen, options.lease_seconds, first_probe);
}

}  // namespace

std::string line_selection_error(const ProfileOptions& options) {
  if (!options.lines) {
    return {};
  }
  if (!options.flamegraph.empty() || !options.speedscope.empty() || !options.collapsed.empty()) {
    return "--flamegraph, --speedscope and --collapsed are for function profiles, not --lines";
  }
  const auto& words = options.patterns;
  if (words.size() == 1 && words[0].find(':') != std::string::npos) {
    return line_range(words[0]) ? "" : "--lines takes FILE:FIRST-LAST with 1 <= FIRST <= LAST, not '" + words[0] + "'";
  }
  if (words.size() < 2 || words.size() > 3) {
    return "--lines takes MODULE [CLASS] FUNCTION, or FILE:FIRST-LAST";
  }
  return {};
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
  auto prepared = prepare_for(catalog, options.patterns, options, 1, &out.unmatched);
  if (!prepared) {
    out.error = prepared.error();
    return out;
  }
  out.notes = std::move(prepared->notes);
  auto installed = profiler->m_agent.instrument(prepared->request);
  if (!installed) {
    const std::string& why = installed.error().message;
    out.error = make_error(installed.error().kind,
                           why.starts_with("nothing was instrumented") ? why : "nothing was instrumented: " + why);
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
  int first = m_functions.empty() ? 1 : m_functions.rbegin()->first + 1;
  // A reloaded function is timed whole (its new lines are not the range's).
  Result<Prepared> prepared = make_error(ErrorKind::not_found, "not found");
  if (m_options.lines) {
    auto chosen = catalog.select(fresh);
    if (!chosen) {
      return not_profiled(chosen.error());
    }
    std::vector<LineChoice> whole;
    for (const auto& function : *chosen) {
      whole.push_back({function, function.definition->def_line, function.definition->range.end_line});
    }
    prepared = prepare_lines(catalog, whole, m_options.lease_seconds, first);
  } else {
    prepared = prepare_for(catalog, fresh, m_options, first);
  }
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
  // --live --lines shows the tables of reloaded functions' sessions too.
  bool every_session = with_data && m_options.lines;
  for (std::size_t i = 1; i < m_sessions.size(); ++i) {
    auto renewed = m_agent.instrument_read(m_sessions[i], every_session);
    if (!renewed) {
      return renewed.error();
    }
    for (auto& function : renewed->data.line_functions) {
      read->data.line_functions.push_back(std::move(function));
    }
  }
  reprofile(read->changed);
  ProcessProfile profile{m_pid, {}, m_functions, {}, {}, {}, m_options.lines};
  if (with_data) {
    profile.data = group_threads(read->data, &profile.members);
    profile.reprofiled.assign(m_reprofiled.begin(), m_reprofiled.end());
  }
  return profile;
}

Result<ProcessProfile> ProcessProfiler::finish() {
  ProcessProfile profile{m_pid, {}, m_functions, {}, {}, {}, m_options.lines};
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
    for (auto& function : removed->data.line_functions) {
      data.line_functions.push_back(std::move(function));
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
