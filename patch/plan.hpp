// The planner: from what is known to be live (a snapshot, or what the agent
// said when probed on first contact) and the new text, which units to send
// with which verdicts. Pure: no socket, no file.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "differ/differ.hpp"
#include "loader/agent_api.hpp"
#include "parser/edit_span.hpp"
#include "parser/source_file.hpp"
#include "patch/compilation_unit.hpp"

namespace pyhot::patch {

struct AppliedChange {
  std::string qualname;  // or "<module>: import json" for statements
  differ::Verdict verdict = differ::Verdict::swap;
  std::optional<loader::Status> status;  // none: refused, or nothing was sent
  std::string reason;
  std::string message;  // from the agent: closures that keep old code, ...
  std::uint32_t line = 0;
  int line_delta = 0;  // relocate; for swap: lines added (+) or removed (-)
  bool operator==(const AppliedChange&) const = default;
};

struct PlannedUnit {
  CompilationUnit unit;
  AppliedChange change;
  int definition = -1;   // first touch: index into the new file's definitions
  bool reported = true;  // false: carried along (first touch's imports), not a change the user made
  bool operator==(const PlannedUnit&) const = default;
};

struct Plan {
  std::vector<PlannedUnit> units;      // sent to the agent, in this order
  std::vector<AppliedChange> kept;     // removed statements: reported, nothing sent
  std::vector<AppliedChange> refused;  // restart verdicts: nothing may be sent
  loader::SnapshotRecord snapshot;     // what the agent records as live
  bool first_touch = false;
  bool record_when_empty = false;  // no units: an apply is still sent so the agent records `snapshot`
  // First touch: per kind, what the file says that could not be compared
  // with the live module (one line each, for the user).
  std::vector<std::string> not_compared;
};

using ChangeFilter = std::function<bool(const differ::Change&)>;
using DefinitionFilter = std::function<bool(const parser::Definition&)>;

// With a snapshot: the differ knows exactly what changed and how. Any
// wanted change with a restart verdict refuses the whole plan.
Plan plan_from_snapshot(const parser::SourceFile& before, const parser::SourceFile& after,
                        const differ::ChangeSet& changes, const ChangeFilter& wanted, loader::SnapshotRecord snapshot);

// First contact, step one: every wanted definition is a candidate, to be sent
// as a verifying dry run (the probe) so the agent says which differ from the
// live code.
Plan first_touch_probe(const parser::SourceFile& after, const DefinitionFilter& wanted);

// Step two: exact verdicts from the probe's statuses (index-aligned with
// probe.units): changed, moved, re-decorated definitions; the live ones the
// file no longer has (`absent`, the probe's) deleted; imports and literal
// constants the live module lacks or holds other values of.
Plan plan_first_touch(const parser::SourceFile& after, const Plan& probe, const std::vector<loader::UnitResult>& probed,
                      loader::SnapshotRecord snapshot, const std::vector<std::string>& absent = {});

// The names (not attributes) a module-level statement other than an
// assignment calls when the module is imported: where one is the module's
// own function, the call may have run code a patch changes, which the
// planner looks for in the whole file.
std::set<std::string> names_called_at_import(const parser::Statement& statement);

// Whether `qualname` is `target` or defined inside it (a nested function).
bool belongs_to(const std::string& qualname, const std::string& target);

// The live source after only `qualname` took its new text: the old snapshot
// with that definition's text replaced.
std::string splice_definition(const parser::SourceFile& before, const parser::SourceFile& after,
                              const std::string& qualname);

// `now` as one edit of `base` (whose hash the agent reported): the lines
// between the longest common prefix and suffix of whole lines. None when a
// text holds a line break other than "\n" that Python's str.splitlines
// also splits at (\r, \f, \v, U+2028, ...): then line numbers would not agree.
// `known`: what the caller knows of `base` (its parsed cache entry
// does), so that it is not scanned whole.
struct KnownText {
  bool newline_breaks_only = false;                  // else looked for
  std::span<const parser::TopLevelStatement> items;  // the lines their starts are on, to count lines from
};
std::optional<loader::SourceEdit> source_edit(std::string_view base, const std::string& base_hash, std::string_view now,
                                              const KnownText& known = {});

}  // namespace pyhot::patch
