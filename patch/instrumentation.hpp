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

// How a body carries its probe: the one choice each diagnostic makes
// (what its collector in the agent answers to).
// - `with_statement`: `with '<marker>:<id>':` above the body (the probe is a
//   context manager). Generators and coroutines are skipped (trace: its hook
//   is the thread's, and must not stay on while a run is suspended).
// - `whole_run`: the same `with`, generators and coroutines included: it is
//   around the whole run, suspensions too (watch, probe: one event per call).
// - `calls`: the probe's own methods around the body,
//   `'<marker>:<id>'.enter()` and a `try` whose `except '<marker>:<id>'.caught:`
//   calls `raised()` and re-raises and whose `finally` calls `exit()`: on
//   3.11+ those calls are inlined Python-to-Python calls, about half what
//   `with` costs (bench/README.md, profile). A generator's or coroutine's
//   suspensions are wrapped in calls too, so its run is timed only while it
//   runs (profile).
enum class ProbeShape { with_statement, whole_run, calls };

// The probe statement's constant for one probe: the agent puts the probe
// object in its place.
std::string probe_constant(const std::string& marker, int probe);

// Units for `sites` of one file: each probed definition gets
// `with '<marker>:<probe>':` above its body, indented between the `def` and
// the body so no line of the body changes; nested sites go into the unit of
// their outermost function. Generators and coroutines are skipped by the
// `with` shape. A body indented with tabs
// or by a single column leaves no indentation between `def` and body: its
// lines (not those inside a string) get a space in front.
// The lines a `calls` probe adds after the body are at the body's last line.
InstrumentedUnits instrument_units(const parser::SourceFile& file, const std::vector<ProbeSite>& sites,
                                   const std::string& marker, ProbeShape shape = ProbeShape::with_statement);

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
