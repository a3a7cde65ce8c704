// Instrumented units: the text of chosen functions with a probe statement
// above each body, at the original line numbers (the agent maps the inserted
// lines away). Shared by every diagnostic that is a patch (profile, watch).
#pragma once

#include <string>
#include <vector>

#include "loader/agent_api.hpp"
#include "parser/source_file.hpp"
#include "util/result.hpp"

namespace pyhot::patch {

// One function to probe, and the id its probe reports under.
struct ProbeSite {
  const parser::Definition* definition = nullptr;
  int probe = 0;
};

// A function that cannot carry a probe, and why.
struct Unprobed {
  const parser::Definition* definition = nullptr;
  std::string reason;
};

struct InstrumentedUnits {
  std::vector<loader::InstrumentedUnitRequest> units;  // one per outermost function
  std::vector<Unprobed> skipped;
};

// The probe statement's constant for one probe: the agent puts the probe
// object in its place.
std::string probe_constant(const std::string& marker, int probe);

// Units for `sites` of one file: each probed definition gets
// `with '<marker>:<probe>':` above its body, indented between the `def` and
// the body so no line of the body changes; nested sites go into the unit of
// their outermost function. Generators and coroutines are skipped (their
// suspensions would need probes of their own), as are bodies indented with
// tabs or by a single column. `suspending`: generators and coroutines are
// probed too, one `with` around the whole run (a watch's one event per call).
InstrumentedUnits instrument_units(const parser::SourceFile& file, const std::vector<ProbeSite>& sites,
                                   const std::string& marker, bool suspending = false);

// The innermost function (not class) whose body holds `line`, or nullptr.
const parser::Definition* function_at_line(const parser::SourceFile& file, std::uint32_t line);

// The unit of def's outermost function with no text inserted: a line probe
// or a variable probe is placed by the agent in its syntax tree (the
// request's `line_probes`, `variable_probes`, which the caller adds), so the
// statement it runs before keeps its own line and column.
loader::InstrumentedUnitRequest statement_probe_unit(const parser::SourceFile& file, const parser::Definition& def);

// The line of a byte offset of the file's text (1-based).
std::uint32_t line_of_byte(const parser::SourceFile& file, std::uint32_t byte);

}  // namespace pyhot::patch
