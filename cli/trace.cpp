#include "cli/trace.hpp"

#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/instrument_session.hpp"
#include "cli/output.hpp"

namespace pyhot::cli {

namespace {

using nlohmann::json;

std::string bracketed_ms(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "[%.3fms]", seconds * 1000);
  return text;
}

void print_node(std::ostream& out, const loader::TraceNode& node, const std::string& lead, const std::string& branch) {
  out << lead << branch << bracketed_ms(node.duration) << " " << node.name << "  " << node.where << "\n";
  std::string next = lead + (branch.empty() ? "" : branch == "└─ " ? "   " : "│  ");
  for (std::size_t i = 0; i < node.children.size(); ++i) {
    print_node(out, node.children[i], next, i + 1 == node.children.size() ? "└─ " : "├─ ");
  }
}

void print_trace(std::ostream& out, const loader::InstrumentEvent& event, const std::string&) {
  out << clock_time(event.time) << "  " << event.thread_name << "  " << milliseconds(event.duration)
      << (event.raised.empty() ? "" : "  raised " + event.raised) << "\n";
  if (event.tree) {
    print_node(out, *event.tree, "", "");
  }
  if (event.omitted > 0) {
    out << "  (" << event.omitted << " calls not kept: a tree keeps 500)\n";
  }
}

json node_json(const loader::TraceNode& node) {
  json out = {{"function", node.name}, {"where", node.where}, {"duration_ms", node.duration * 1000}};
  out["children"] = json::array();
  for (const auto& child : node.children) {
    out["children"].push_back(node_json(child));
  }
  return out;
}

json trace_json(const loader::InstrumentEvent& event, const std::string& function) {
  json out = {{"event", "call"},           {"time", event.time},   {"thread", event.thread_name},
              {"thread_id", event.thread}, {"function", function}, {"duration_ms", event.duration * 1000},
              {"omitted", event.omitted}};
  if (event.tree) {
    out["tree"] = node_json(*event.tree);
  }
  if (!event.raised.empty()) {
    out["raised"] = event.raised;
  }
  return out;
}

}  // namespace

int run_trace(const TraceCommandOptions& options) {
  if (options.target.empty() || options.target.size() > 3) {
    print_error("trace takes PID MODULE [CLASS] METHOD", options.json);
    return k_exit_usage;
  }
  EventStream stream = event_stream(options, "trace", "Tracing", "call", target_pattern(options.target));
  stream.prepare = [&options](loader::Agent& agent, std::int64_t limit) -> Result<PreparedInstrumentation> {
    // A generator's calls would interleave with its caller's: not traced.
    auto out = function_probes(agent, options.target, patch::ProbeShape::with_statement);
    if (!out) {
      return out.error();
    }
    out->request.kind = "trace";
    out->request.lease_seconds = options.lease_seconds;
    out->request.trace = loader::TraceOptions{limit, options.min_ms, options.depth};
    return out;
  };
  stream.print = print_trace;
  stream.to_json = trace_json;
  return connect_and_stream(options.force, stream);
}

}  // namespace pyhot::cli
