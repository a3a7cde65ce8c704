// What code run at import made of what a patch changes: a module-level
// call of a function whose code changes, defaults that read a name run
// again, names a `del` below removes, class-level statements the file
// removed. The planner's (patch/plan.cpp) checks of what a fresh import
// would do beyond the changed definitions themselves.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "differ/differ.hpp"
#include "parser/source_file.hpp"
#include "patch/compilation_unit.hpp"
#include "patch/plan.hpp"

namespace pyhot::patch {

// What a patch changes that a module-level call made at import may have
// used: module-level functions whose own code changes, and names (re-run
// module-level assignments, classes whose members change, and their
// subclasses in the file), each with its line in the new file.
struct ChangedForCalls {
  std::map<std::string, std::uint32_t> functions;
  std::map<std::string, std::uint32_t> names;
};

// Adds the file's subclasses of the changed classes (`class Turtle(RawTurtle)`).
void add_subclasses(const parser::SourceFile& after, ChangedForCalls& changed);

// Refusals of unchanged module-level calls that ran what the patch changes
// (`skip`: statements of `after` the patch runs or refuses anyway).
std::vector<AppliedChange> calls_of_changed_code(const parser::SourceFile& after, const ChangedForCalls& changed,
                                                 const std::set<std::size_t>& skip);

// Functions whose defaults read a re-run name: swapped (their defaults
// with them), added to `selected`; for methods, refusals (returned).
std::vector<AppliedChange> swap_defaults_of_reruns(const parser::SourceFile& before, const parser::SourceFile& after,
                                                   differ::ChangeSet& selected);

// Leaves out of `unit`'s targets the names an unchanged `del` below the statement removes.
void drop_targets_deleted_below(const parser::SourceFile& after, const parser::Statement& statement,
                                CompilationUnit& unit);

// Removals from the live class of what a removed class-level statement bound.
std::vector<PlannedUnit> class_bindings_removed(const parser::SourceFile& before, const parser::SourceFile& after,
                                                const differ::Change& change, const UnitBuilder& old_units);

}  // namespace pyhot::patch
