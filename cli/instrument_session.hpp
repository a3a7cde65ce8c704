// What a command that instruments a live process for a while needs around
// its session: Ctrl-C that ends it cleanly, a marker no program contains,
// the text that is live for a module, its instrumented units (profile,
// watch, probe, trace), and the event stream of watch, probe and trace.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/interrupts.hpp"
#include "cli/profile_select.hpp"
#include "cli/stream_command.hpp"
#include "loader/agent_api.hpp"
#include "patch/instrumentation.hpp"

namespace pyhot::cli {

// "__pyhot_probe_" and 16 random hex digits: the probes' constants.
std::string new_probe_marker();

// The text that is live for a module: what the agent recorded (the imported
// text, or the last reload's), else the file.
FunctionCatalog::Loader live_module_text(loader::Agent& agent);

// What a streaming diagnostic (watch, probe, trace) sends, and the name
// each probe id reports under.
struct PreparedInstrumentation {
  loader::InstrumentRequest request;
  std::map<int, std::string> names;
};

// How one streaming diagnostic is made and shown; the loop is shared.
struct EventStream {
  int pid = 0;
  std::string what;     // "watch", "probe", "trace"
  std::string verb;     // "Watching", "Probing", "Tracing"
  std::string noun;     // what one event is: "call", "hit"
  std::string subject;  // what the first line names
  std::int64_t count = 0;
  double duration_seconds = 0;  // 0: until Ctrl-C or the count
  bool json = false;
  // The request, made again (for the remaining count) after a reload.
  std::function<Result<PreparedInstrumentation>(loader::Agent&, std::int64_t limit)> prepare;
  std::function<void(std::ostream&, const loader::InstrumentEvent&, const std::string& name)> print;
  std::function<nlohmann::json(const loader::InstrumentEvent&, const std::string& name)> to_json;
};

// "module.Class.method" from the words `reload` takes (MODULE [CLASS] METHOD).
std::string target_pattern(const std::vector<std::string>& target);

// Adds to `request` (its marker set) the instrumented units of `chosen` in
// `shape`, probe ids from `first_probe` on in the order chosen; each
// function that cannot carry a probe is said on stderr as
// "pyhot: <not_probed>: module.qualname: why". False when none can.
bool add_probe_units(FunctionCatalog& catalog, const std::vector<ChosenFunction>& chosen, patch::ProbeShape shape,
                     int first_probe, const std::string& not_probed, loader::InstrumentRequest& request);

// A probe above the body of each function the words name, the probe ids
// named module.qualname, in `shape`; the caller sets the kind, its options
// and lease.
Result<PreparedInstrumentation> function_probes(loader::Agent& agent, const std::vector<std::string>& target,
                                                patch::ProbeShape shape);

// connect_to_agent(stream.pid), then stream_events; the exit code.
int connect_and_stream(bool force, const EventStream& stream);

// The stream of one such command: its pid, count, duration and output form
// from `options`, and the words it is named by; prepare, print and to_json
// are the caller's.
EventStream event_stream(const StreamCommandOptions& options, std::string what, std::string verb, std::string noun,
                         std::string subject);

// Installs the instrumentation, prints its events as they come (reading
// every 100 ms, which renews the lease) until the count, the duration or
// Ctrl-C, then removes it. The exit code.
int stream_events(loader::Agent& agent, const EventStream& stream);

// "12:03:36.655", local time; "0.021 ms".
std::string clock_time(double unix_seconds);
std::string milliseconds(double seconds);

// `pyhot history` lists the instrumentations active in a process (a watch,
// a profile) as "i<session>"; `pyhot revert PID i<session>` removes one.
std::optional<int> instrumentation_id(const std::string& word);
// Printed (when `print`) and returned as a JSON array.
nlohmann::json list_instrumentations(const std::vector<loader::ActiveInstrumentation>& active, int pid, bool print);
// The exit code; `document` the --json answer.
int remove_instrumentation(loader::Agent& agent, int session, bool json_output, nlohmann::json& document);

}  // namespace pyhot::cli
