// What a command that instruments a live process for a while needs around
// its session: Ctrl-C that ends it cleanly, a marker no program contains,
// and the text that is live for a module (watch; profile has its own copy).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/profile_select.hpp"
#include "loader/agent_api.hpp"

namespace pyhot::cli {

// While alive, SIGINT, SIGTERM and SIGHUP only set interrupted(): the
// command removes its instrumentation and reports, as at its normal end.
class InterruptScope {
 public:
  InterruptScope();
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
};
bool interrupted();

// Sleeps until `until` or an interrupt, whichever comes first.
void pause_until(std::chrono::steady_clock::time_point until);

// "__pyhot_probe_" and 16 random hex digits: the probes' constants.
std::string new_probe_marker();

// The text that is live for a module: what the agent recorded (the imported
// text, or the last reload's), else the file.
FunctionCatalog::Loader live_module_text(loader::Agent& agent);

// `pyhot history` lists the instrumentations active in a process (a watch,
// a profile) as "i<session>"; `pyhot revert PID i<session>` removes one.
std::optional<int> instrumentation_id(const std::string& word);
// Printed (unless json_output) and returned as a JSON array; an agent that
// cannot list them gives an empty one.
nlohmann::json list_instrumentations(loader::Agent& agent, int pid, bool print);
// The exit code; `document` the --json answer.
int remove_instrumentation(loader::Agent& agent, int session, bool json_output, nlohmann::json& document);

}  // namespace pyhot::cli
