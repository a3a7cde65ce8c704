// Turns an edited file into a patch for one live process: reads what the
// agent says is live, diffs, builds compilation units, applies. Shared by
// `reload` and `autoreload`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "differ/differ.hpp"
#include "loader/agent_client.hpp"
#include "parser/source_file.hpp"
#include "util/result.hpp"

namespace pyhot::cli {

struct AppliedChange {
  std::string qualname;  // or "<module>: import json" for statements
  std::string verdict;   // swap, relocate, ...
  std::string status;    // applied, unchanged, would_apply, refused
  std::string reason;
  std::string message;  // from the agent: closures that keep old code, ...
  std::uint32_t line = 0;
  int line_delta = 0;  // relocate; for swap: lines added (+) or removed (-)
};

struct PatchOutcome {
  std::string module;
  std::string file;
  std::optional<int> patch_id;
  bool dry_run = false;
  bool first_touch = false;  // no snapshot: candidates were compared with live code
  std::vector<AppliedChange> changes;
  std::vector<AppliedChange> refused;  // restart verdicts: nothing was applied
  std::vector<parser::SyntaxError> syntax_errors;
  std::string definition_source;  // patch_definition: the definition's new text, dedented
};

nlohmann::json to_json(const PatchOutcome& outcome);

// "swapped", "relocated", "defined", "deleted", "rebound", "re-ran": how
// reload and autoreload say what a verdict did.
std::string past_tense(const std::string& verdict);

struct ModuleLocation {
  std::string module;
  std::string file;
};

// FILE.py (or a path) → the module the target knows it by; MODULE → its file.
Result<ModuleLocation> locate_module(loader::AgentChannel& agent, const std::string& module_or_file);

// Applies every change between what is live and `new_text`.
Result<PatchOutcome> patch_file(loader::AgentChannel& agent, const ModuleLocation& where, const std::string& new_text,
                                bool dry_run);

// The same for an already parsed file. `live` is what the caller knows to be
// live (the last text it applied); null asks the agent for its snapshot.
// A syntax error in `after` is an Error of kind syntax_error.
Result<PatchOutcome> patch_parsed(loader::AgentChannel& agent, const ModuleLocation& where,
                                  const parser::SourceFile& after, const parser::SourceFile* live, bool dry_run);

// Applies one definition (qualname) and the imports it may need.
// not_found when the file has no such definition; outcome.changes is empty
// when its source has not changed.
Result<PatchOutcome> patch_definition(loader::AgentChannel& agent, const ModuleLocation& where,
                                      const std::string& new_text, const std::string& qualname, bool dry_run);

}  // namespace pyhot::cli
