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

// How a body carries its probe. `with_statement`: `with '<marker>:<id>':`
// above the body (the probe is a context manager). `calls`: the probe's own
// methods around the body, `'<marker>:<id>'.enter()` and a `try` whose
// `except '<marker>:<id>'.caught:` calls `raised()` and re-raises and whose
// `finally` calls `exit()`: on 3.11+ those calls are inlined Python-to-Python
// calls, about half what `with` costs (bench/README.md, profile).
enum class ProbeShape { with_statement, calls };

// The probe statement's constant for one probe: the agent puts the probe
// object in its place.
std::string probe_constant(const std::string& marker, int probe);

// Units for `sites` of one file: each probed definition gets
// `with '<marker>:<probe>':` above its body, indented between the `def` and
// the body so no line of the body changes; nested sites go into the unit of
// their outermost function. Generators and coroutines are skipped (their
// suspensions would need probes of their own). A body indented with tabs
// or by a single column leaves no indentation between `def` and body: its
// lines (not those inside a string) get a space in front.
// The lines a `calls` probe adds after the body are at the body's last line.
InstrumentedUnits instrument_units(const parser::SourceFile& file, const std::vector<ProbeSite>& sites,
                                   const std::string& marker, ProbeShape shape = ProbeShape::with_statement);

// The line of a byte offset of the file's text (1-based).
std::uint32_t line_of_byte(const parser::SourceFile& file, std::uint32_t byte);

}  // namespace pyhot::patch
