#include "cli/watch.hpp"

#include <time.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/instrument_session.hpp"
#include "cli/output.hpp"
#include "cli/profile_select.hpp"
#include "loader/agent_api.hpp"
#include "loader/process.hpp"
#include "patch/compilation_unit.hpp"
#include "patch/instrumentation.hpp"

namespace pyhot::cli {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// Events are read this often: the lag a user sees, and the lease renewal.
constexpr auto k_read_interval = std::chrono::milliseconds(100);
// The agent's most events per reply (PROTOCOL.md, "instrument_events").
constexpr std::size_t k_read_max_events = 200;

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

// The words `reload` takes, as a profile pattern naming one qualname.
std::string pattern_of(const std::vector<std::string>& target) {
  std::string pattern;
  for (const auto& word : target) {
    pattern += (pattern.empty() ? "" : ".") + word;
  }
  return pattern;
}

struct Watched {
  loader::InstrumentRequest request;
  std::map<int, std::string> names;  // probe id -> module.qualname
};

Result<Watched> prepare(loader::Agent& agent, const WatchCommandOptions& options, std::int64_t limit) {
  auto modules = agent.modules();
  if (!modules) {
    return modules.error();
  }
  FunctionCatalog catalog(*modules, live_module_text(agent));
  auto chosen = catalog.select({pattern_of(options.target)});
  if (!chosen) {
    return chosen.error();
  }
  Watched out;
  out.request.kind = "watch";
  out.request.lease_seconds = options.lease_seconds;
  out.request.marker = new_probe_marker();
  out.request.watch =
      loader::WatchOptions{options.filter, options.exprs, limit, options.exceptions, options.depth, options.length};
  std::map<std::string, std::vector<patch::ProbeSite>> sites;
  std::vector<std::string> order;
  int next = 1;
  for (const auto& function : *chosen) {
    if (!sites.contains(function.module)) {
      order.push_back(function.module);
    }
    sites[function.module].push_back({function.definition, next});
    out.names[next++] = function.name();
  }
  for (const auto& module : order) {
    const auto* source = catalog.source(module);
    auto units = patch::instrument_units(*source, sites[module], out.request.marker, true);
    for (const auto& skipped : units.skipped) {
      std::cerr << "pyhot: not watched: " << module << "." << skipped.definition->qualname << ": " << skipped.reason
                << "\n";
    }
    if (!units.units.empty()) {
      out.request.modules.push_back({module, source->path, patch::future_features(*source), std::move(units.units)});
    }
  }
  if (out.request.modules.empty()) {
    return make_error(ErrorKind::refused, "none of the functions chosen can be watched");
  }
  return out;
}

json event_json(const loader::WatchEvent& event, const std::string& function) {
  json out = {{"event", "call"},           {"time", event.time},   {"thread", event.thread_name},
              {"thread_id", event.thread}, {"function", function}, {"duration_ms", event.duration * 1000}};
  auto values = [](const std::vector<std::pair<std::string, std::string>>& pairs) {
    json object = json::object();
    for (const auto& [name, value] : pairs) {
      object[name] = value;
    }
    return object;
  };
  if (!event.exprs.empty()) {
    out["exprs"] = values(event.exprs);
  } else {
    out["args"] = values(event.args);
  }
  if (event.returned) {
    out["return"] = *event.returned;
  }
  if (event.exception) {
    out["exception"] = {{"type", event.exception->type},
                        {"message", event.exception->message},
                        {"traceback", event.exception->traceback}};
  }
  return out;
}

void print_event(std::ostream& out, const loader::WatchEvent& event, const std::string& function) {
  out << clock_time(event.time) << "  " << event.thread_name << "  " << function << "  " << milliseconds(event.duration)
      << "\n";
  if (!event.exprs.empty()) {
    for (const auto& [text, value] : event.exprs) {
      out << "  " << text << " = " << value << "\n";
    }
  } else {
    out << "  args: ";
    for (const auto& [name, value] : event.args) {
      out << "  " << name << "=" << value;
    }
    out << "\n";
    if (event.returned) {
      out << "  return: " << *event.returned << "\n";
    }
  }
  if (event.exception) {
    out << "  raised: " << event.exception->type
        << (event.exception->message.empty() ? "" : ": " + event.exception->message) << "\n";
    for (const auto& line : event.exception->traceback) {
      out << "    " << line << "\n";
    }
  }
  out << std::flush;
}

// One watch session: its events read and printed until it is over.
class WatchSession {
 public:
  WatchSession(loader::Agent& agent, const WatchCommandOptions& options) : m_agent(agent), m_options(options) {}

  Result<Done> install() {
    std::int64_t limit = m_options.count > 0 ? m_options.count - m_shown : 0;
    auto watched = prepare(m_agent, m_options, limit);
    if (!watched) {
      return watched.error();
    }
    auto installed = m_agent.instrument(watched->request);
    if (!installed) {
      return installed.error();
    }
    for (const auto& skipped : installed->skipped) {
      std::cerr << "pyhot: not watched: " << skipped.module << "." << skipped.qualname << ": " << skipped.message
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
      if (m_options.json) {
        std::cout << event_json(event, name).dump() << "\n" << std::flush;
      } else {
        print_event(std::cout, event, name);
      }
      ++m_shown;
    }
    if (read->filter_errors > 0 && !m_filter_errors_reported) {
      m_filter_errors_reported = true;
      std::cerr << "pyhot: --filter raised " << read->filter_error << " (such calls count as not matching)\n";
    }
    if (read->errors > 0 && !m_errors_reported) {
      m_errors_reported = true;
      std::cerr << "pyhot: the watch could not record a call: " << read->error << "\n";
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
      std::cerr << "pyhot: " << name << " was reloaded: watching its new code\n";
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
    if (m_options.json) {
      std::cout << json{{"event", "lost"}, {"count", lost}}.dump() << "\n";
    } else {
      std::cerr << "pyhot: " << lost << " call" << (lost == 1 ? "" : "s")
                << " not shown: the output did not keep up (the target keeps the last 1000)\n";
    }
  }

  loader::Agent& m_agent;
  const WatchCommandOptions& m_options;
  std::map<int, std::string> m_names;
  int m_session = 0;
  std::int64_t m_cursor = 0;
  std::int64_t m_shown = 0;
  bool m_filter_errors_reported = false;
  bool m_errors_reported = false;
  bool m_more = false;
};

}  // namespace

int run_watch(const WatchCommandOptions& options) {
  if (options.target.empty() || options.target.size() > 3) {
    print_error("watch takes PID MODULE [CLASS] METHOD", options.json);
    return k_exit_usage;
  }
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
  InterruptScope interrupts;
  WatchSession session(agent, options);
  if (auto installed = session.install(); !installed) {
    print_error("nothing was watched: " + installed.error().message, options.json);
    return k_exit_failed;
  }
  if (!options.json) {
    std::cerr << "Watching " << pattern_of(options.target) << " in process " << options.pid
              << (options.count > 0 ? " for " + std::to_string(options.count) + " calls" : "") << " (Ctrl-C to stop)\n";
  }
  auto end = options.duration_seconds > 0 ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                               std::chrono::duration<double>(options.duration_seconds))
                                          : Clock::time_point::max();
  Result<bool> going = true;
  while (going && *going && !interrupted() && Clock::now() < end) {
    if (!session.more_waiting()) {
      pause_until(std::min(end, Clock::now() + k_read_interval));
    }
    going = session.read();
  }
  if (going && *going) {
    going = session.read();  // what came since the last read
  }
  auto removed = session.remove();
  if (!going || !removed) {
    auto why = !going ? going.error() : removed.error();
    print_error(why.kind == ErrorKind::not_found
                    ? "the watch was removed in the target (pyhot revert, or its lease ran out)"
                    : "the watch ended: " + why.message,
                options.json);
    return k_exit_failed;
  }
  if (!options.json) {
    std::cerr << session.shown() << " call" << (session.shown() == 1 ? "" : "s")
              << " shown; the watch was removed from process " << options.pid << "\n";
  }
  return k_exit_done;
}

}  // namespace pyhot::cli
