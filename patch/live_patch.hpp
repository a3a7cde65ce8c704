// Turns an edited file into a patch for one live process: asks the agent what
// is live, plans (patch/plan.hpp), runs the plan through the agent, keeps
// what the applied text parses to. Shared by `reload` and `autoreload`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "loader/agent_api.hpp"
#include "parser/source_file.hpp"
#include "patch/plan.hpp"
#include "util/result.hpp"

namespace pyhot::patch {

struct PatchOutcome {
  std::string module;
  std::string file;
  std::optional<int> patch_id;
  bool dry_run = false;
  bool first_touch = false;  // no snapshot: candidates were compared with live code
  std::vector<AppliedChange> changes;
  std::vector<AppliedChange> refused;     // restart verdicts: nothing was applied
  std::string definition_source;          // patch_definition: the definition's new text, dedented
  std::string bytecode_cache;             // first touch: what the module's .pyc proved, when nothing else could
  std::vector<std::string> not_compared;  // first touch: per kind, what could not be compared with the live module

  // Whether any change is live now or would be (dry run): not merely found unchanged.
  bool changed_anything() const;
  bool applied_anything() const;  // any change with status applied
};

struct ModuleLocation {
  std::string module;
  std::string file;
  // What the agent answered for the module's snapshot hash along with the
  // file's module (locate_module): then no snapshot request is sent.
  std::optional<loader::LiveSnapshot> snapshot;
};

// FILE.py (or a path) → the module the target knows it by; MODULE → its file.
Result<ModuleLocation> locate_module(loader::Agent& agent, const std::string& module_or_file);

// The text the agent holds as live and the hash it reported for it: with
// one, the new text crosses the socket as an edit of it, not whole.
struct Baseline {
  std::optional<std::string_view> text;  // the live text
  std::string hash;
  std::string new_hash;  // the new text's hash when the caller has it already ("": hashed when sent)
  KnownText known;       // what its parsed cache entry says of the text
};

// Runs a plan: one apply request, the agent's statuses folded into the outcome.
Result<PatchOutcome> execute(loader::Agent& agent, const ModuleLocation& where, const parser::SourceFile& after,
                             const Plan& plan, bool dry_run, const Baseline& baseline = {});

// Applies every change between what is live and `new_text`. A syntax error
// in the new text is an Error of kind syntax_error.
// `utf8_checked` false: the text is read_source_unchecked()'s, and refused
// as read_source() would refuse it (only the edited part of it is checked
// when the live text's parsed cache entry says the rest is UTF-8).
// new_text is taken by value: a caller done with it moves it in, and a
// megabytes-long module is then never copied.
Result<PatchOutcome> patch_file(loader::Agent& agent, const ModuleLocation& where, std::string new_text, bool dry_run,
                                bool utf8_checked = true);

// The same for an already parsed file. `live` is what the caller knows to be
// live (the last text it applied); null asks the agent for its snapshot.
Result<PatchOutcome> patch_parsed(loader::Agent& agent, const ModuleLocation& where, const parser::SourceFile& after,
                                  const parser::SourceFile* live, bool dry_run);

// Applies one definition (qualname) and the imports it may need.
// not_found when the file has no such definition; outcome.changes is empty
// when its source has not changed.
Result<PatchOutcome> patch_definition(loader::Agent& agent, const ModuleLocation& where, std::string new_text,
                                      const std::string& qualname, bool dry_run);

}  // namespace pyhot::patch
