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

using nlohmann::json;

Result<PreparedInstrumentation> prepare(loader::Agent& agent, const WatchCommandOptions& options, std::int64_t limit) {
  auto out = function_probes(agent, options.target, patch::ProbeShape::whole_run);
  if (!out) {
    return out.error();
  }
  out->request.kind = "watch";
  out->request.lease_seconds = options.lease_seconds;
  out->request.watch =
      loader::WatchOptions{options.filter, options.exprs, limit, options.exceptions, options.depth, options.length};
  return out;
}

json event_json(const loader::InstrumentEvent& event, const std::string& function) {
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

void print_event(std::ostream& out, const loader::InstrumentEvent& event, const std::string& function) {
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
}

}  // namespace

int run_watch(const WatchCommandOptions& options) {
  if (options.target.empty() || options.target.size() > 3) {
    print_error("watch takes PID MODULE [CLASS] METHOD", options.json);
    return k_exit_usage;
  }
  EventStream stream = event_stream(options, "watch", "Watching", "call", target_pattern(options.target));
  stream.prepare = [&options](loader::Agent& agent, std::int64_t limit) { return prepare(agent, options, limit); };
  stream.print = print_event;
  stream.to_json = event_json;
  return connect_and_stream(options.force, stream);
}

}  // namespace pyhot::cli
