#include "cli/instrument_session.hpp"

#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <random>

#include "cli/commands.hpp"
#include "cli/live_process.hpp"
#include "cli/output.hpp"
#include "loader/process.hpp"
#include "parser/parser.hpp"
#include "patch/compilation_unit.hpp"
#include "patch/instrumentation.hpp"
#include "util/file.hpp"

namespace pyhot::cli {

namespace {

std::string lowercase(std::string text) {
  for (auto& c : text) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return text;
}

std::string counted(std::int64_t count, const std::string& noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

// The agent's most events per reply (PROTOCOL.md, "instrument_events").
constexpr std::size_t k_read_max_events = 200;
// Events are read this often: the lag a user sees, and the lease renewal.
constexpr auto k_read_interval = std::chrono::milliseconds(100);

// One instrumentation's events, read and printed until it is over; after
// a reload of its function, the same made again on the new code.
class EventReader {
 public:
  EventReader(loader::Agent& agent, const EventStream& stream) : m_agent(agent), m_stream(stream) {}

  Result<Done> install() {
    std::int64_t limit = m_stream.count > 0 ? m_stream.count - m_shown : 0;
    auto watched = m_stream.prepare(m_agent, limit);
    if (!watched) {
      return watched.error();
    }
    auto installed = m_agent.instrument(watched->request);
    if (!installed) {
      return installed.error();
    }
    for (const auto& skipped : installed->skipped) {
      std::cerr << "pyhot: not instrumented: " << skipped.module << "." << skipped.qualname << ": " << skipped.message
                << "\n";
    }
    m_names = std::move(watched->names);
    m_session = installed->session;
    m_cursor = 0;
    m_filter_errors_reported = false;
    return k_done;
  }

  // Reads what happened since the last read; false when the watch is over.
  Result<bool> read() {
    auto read = m_agent.instrument_events(m_session, m_cursor);
    if (!read) {
      return read.error();
    }
    m_cursor = read->cursor;
    if (read->lost > 0) {
      report_lost(read->lost);
    }
    for (const auto& event : read->events) {
      const auto& name = m_names[event.probe];
      if (m_stream.json) {
        std::cout << m_stream.to_json(event, name).dump() << "\n" << std::flush;
      } else {
        m_stream.print(std::cout, event, name);
        std::cout << std::flush;
      }
      ++m_shown;
    }
    if (read->filter_errors > 0 && !m_filter_errors_reported) {
      m_filter_errors_reported = true;
      std::cerr << "pyhot: --filter raised " << read->filter_error << " (such calls count as not matching)\n";
    }
    if (read->errors > 0 && !m_errors_reported) {
      m_errors_reported = true;
      std::cerr << "pyhot: the probe could not record an event: " << read->error << "\n";
    }
    // A full read leaves events waiting: the next one comes at once.
    m_more = read->events.size() >= k_read_max_events;
    if (!read->replaced.empty()) {
      return rewatch(read->replaced);
    }
    return !read->done;
  }

  bool more_waiting() const { return m_more; }

  Result<Done> remove() {
    auto removed = m_agent.instrument_remove(m_session);
    if (!removed) {
      return removed.error();
    }
    return k_done;
  }

  std::int64_t shown() const { return m_shown; }

 private:
  // A reload gave a watched function new code: the watch moves to it.
  Result<bool> rewatch(const std::vector<std::string>& replaced) {
    for (const auto& name : replaced) {
      std::cerr << "pyhot: " << name << " was reloaded: " << lowercase(m_stream.verb) << " its new code\n";
    }
    if (auto removed = remove(); !removed) {
      return removed.error();
    }
    if (auto installed = install(); !installed) {
      return installed.error();
    }
    return true;
  }

  void report_lost(std::int64_t lost) {
    if (m_stream.json) {
      std::cout << nlohmann::json{{"event", "lost"}, {"count", lost}}.dump() << "\n";
    } else {
      std::cerr << "pyhot: " << lost << " call" << (lost == 1 ? "" : "s")
                << " not shown: the output did not keep up (the target keeps the last 1000)\n";
    }
  }

  loader::Agent& m_agent;
  const EventStream& m_stream;
  std::map<int, std::string> m_names;
  int m_session = 0;
  std::int64_t m_cursor = 0;
  std::int64_t m_shown = 0;
  bool m_filter_errors_reported = false;
  bool m_errors_reported = false;
  bool m_more = false;
};

}  // namespace

// "12:03:36.655", local time.
std::string clock_time(double unix_seconds) {
  auto whole = static_cast<time_t>(unix_seconds);
  tm local{};
  localtime_r(&whole, &local);
  char text[32];
  std::snprintf(text, sizeof text, "%02d:%02d:%02d.%03d", local.tm_hour, local.tm_min, local.tm_sec,
                static_cast<int>((unix_seconds - static_cast<double>(whole)) * 1000) % 1000);
  return text;
}

std::string milliseconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f ms", seconds * 1000);
  return text;
}

std::string target_pattern(const std::vector<std::string>& target) {
  std::string pattern;
  for (const auto& word : target) {
    pattern += (pattern.empty() ? "" : ".") + word;
  }
  return pattern;
}

bool add_probe_units(FunctionCatalog& catalog, const std::vector<ChosenFunction>& chosen, patch::ProbeShape shape,
                     int first_probe, const std::string& not_probed, loader::InstrumentRequest& request) {
  std::map<std::string, std::vector<patch::ProbeSite>> sites;
  std::vector<std::string> order;
  int next = first_probe;
  for (const auto& function : chosen) {
    if (!sites.contains(function.module)) {
      order.push_back(function.module);
    }
    sites[function.module].push_back({function.definition, next++});
  }
  bool any = false;
  for (const auto& module : order) {
    const auto* source = catalog.source(module);
    auto units = patch::instrument_units(*source, sites[module], request.marker, shape);
    for (const auto& skipped : units.skipped) {
      std::cerr << "pyhot: " << not_probed << ": " << module << "." << skipped.definition->qualname << ": "
                << skipped.reason << "\n";
    }
    if (!units.units.empty()) {
      request.modules.push_back({module, source->path, patch::future_features(*source), std::move(units.units)});
      any = true;
    }
  }
  return any;
}

Result<PreparedInstrumentation> function_probes(loader::Agent& agent, const std::vector<std::string>& target,
                                                patch::ProbeShape shape) {
  auto modules = agent.modules();
  if (!modules) {
    return modules.error();
  }
  FunctionCatalog catalog(*modules, live_module_text(agent));
  auto chosen = catalog.select({target_pattern(target)});
  if (!chosen) {
    return chosen.error();
  }
  PreparedInstrumentation out;
  out.request.marker = new_probe_marker();
  int next = 1;
  for (const auto& function : *chosen) {
    out.names[next++] = function.name();
  }
  if (!add_probe_units(catalog, *chosen, shape, 1, "not instrumented", out.request)) {
    return make_error(ErrorKind::refused, "none of the functions chosen can carry a probe");
  }
  return out;
}

EventStream event_stream(const StreamCommandOptions& options, std::string what, std::string verb, std::string noun,
                         std::string subject) {
  EventStream stream;
  stream.pid = options.pid;
  stream.what = std::move(what);
  stream.verb = std::move(verb);
  stream.noun = std::move(noun);
  stream.subject = std::move(subject);
  stream.count = options.count;
  stream.duration_seconds = options.duration_seconds;
  stream.json = options.json;
  return stream;
}

int connect_and_stream(bool force, const EventStream& stream) {
  auto process = loader::require_python_process(stream.pid);
  if (!process) {
    print_error(process.error().message, stream.json);
    return k_exit_failed;
  }
  loader::ConnectOptions connect;
  connect.force = force;
  auto client = loader::connect_to_agent(*process, connect);
  if (!client) {
    print_error(client.error().message, stream.json);
    return k_exit_failed;
  }
  loader::Agent agent(**client);
  return stream_events(agent, stream);
}

int stream_events(loader::Agent& agent, const EventStream& stream) {
  using Clock = std::chrono::steady_clock;
  InterruptScope interrupts;
  EventReader session(agent, stream);
  if (auto installed = session.install(); !installed) {
    const auto& why = installed.error().message;
    print_error(why.starts_with("nothing was instrumented") ? why : "nothing was instrumented: " + why, stream.json);
    return k_exit_failed;
  }
  if (!stream.json) {
    std::cerr << stream.verb << " " << stream.subject << " in process " << stream.pid
              << (stream.count > 0 ? " for " + counted(stream.count, stream.noun) : "") << " (Ctrl-C to stop)\n";
  }
  auto end = stream.duration_seconds > 0 ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                              std::chrono::duration<double>(stream.duration_seconds))
                                         : Clock::time_point::max();
  Result<bool> going = true;
  while (going && *going && !interrupted() && Clock::now() < end) {
    if (!session.more_waiting()) {
      pause_until(std::min(end, Clock::now() + k_read_interval));
    }
    going = session.read();
  }
  // What came since the last read, all of it.
  while (going && *going) {
    going = session.read();
    if (going && !session.more_waiting()) {
      break;
    }
  }
  auto removed = session.remove();
  if (!going || !removed) {
    auto why = !going ? going.error() : removed.error();
    print_error(why.kind == ErrorKind::not_found
                    ? "the " + stream.what + " was removed in the target (pyhot revert, or its lease ran out)"
                    : "the " + stream.what + " ended: " + why.message,
                stream.json);
    return k_exit_failed;
  }
  if (!stream.json) {
    std::cerr << counted(session.shown(), stream.noun) << " shown; the " << stream.what << " was removed from process "
              << stream.pid << "\n";
  }
  return k_exit_done;
}

std::string new_probe_marker() {
  std::random_device random;
  std::uniform_int_distribution<unsigned> digit(0, 15);
  std::string marker = "__pyhot_probe_";
  for (int i = 0; i < 16; ++i) {
    marker += "0123456789abcdef"[digit(random)];
  }
  return marker;
}

FunctionCatalog::Loader live_module_text(loader::Agent& agent) {
  return [&agent](const loader::LoadedModule& module) -> Result<parser::SourceFile> {
    auto recorded = agent.snapshot(module.name);
    if (recorded && *recorded) {
      return parser::parse_source(**recorded, module.file);
    }
    auto text = util::read_python_file(module.file);
    if (!text) {
      return text.error();
    }
    return parser::parse_source(*text, module.file);
  };
}

std::optional<int> instrumentation_id(const std::string& word) {
  if (word.size() < 2 || word[0] != 'i' || word.size() > 10 ||
      word.find_first_not_of("0123456789", 1) != std::string::npos) {
    return std::nullopt;
  }
  return std::stoi(word.substr(1));
}

nlohmann::json list_instrumentations(const std::vector<loader::ActiveInstrumentation>& active, int pid, bool print) {
  nlohmann::json out = nlohmann::json::array();
  if (print && !active.empty()) {
    std::cout << "Active instrumentations (removed when their pyhot ends; `pyhot revert " << pid
              << " iN` removes one now):\n";
  }
  for (const auto& item : active) {
    std::string id = "i" + std::to_string(item.session);
    out.push_back({{"id", id},
                   {"session", item.session},
                   {"kind", item.kind},
                   {"started", item.started},
                   {"lease_seconds", item.lease_seconds},
                   {"functions", item.functions}});
    if (print) {
      std::cout << id << "  " << format_time(item.started) << "  " << item.kind << "  "
                << counted(static_cast<std::int64_t>(item.functions.size()), "function") << " instrumented\n";
      for (const auto& function : item.functions) {
        std::cout << "      " << function << "\n";
      }
    }
  }
  return out;
}

int remove_instrumentation(loader::Agent& agent, int session, bool json_output, nlohmann::json& document) {
  std::string kind = "instrumentation";
  if (auto active = agent.instrument_list()) {
    for (const auto& item : *active) {
      if (item.session == session) {
        kind = item.kind;
      }
    }
  }
  auto removed = agent.instrument_remove(session);
  if (!removed) {
    document = {{"ok", false}, {"error", removed.error().message}};
    if (!json_output) {
      std::cout << "Error: " << removed.error().message << "\n";
    }
    return k_exit_failed;
  }
  document = {{"ok", true}, {"removed", "i" + std::to_string(session)}, {"kept", removed->changed}};
  if (!json_output) {
    std::cout << "Removed " << kind << " i" << session << ": the original code is back\n";
  }
  return k_exit_done;
}

}  // namespace pyhot::cli
