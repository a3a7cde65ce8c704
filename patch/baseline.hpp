// First contact: the text a module was imported from, when the agent has no
// record of it (an attached process). Candidates come from what pyhot can see
// beside the file (git, editor backups, the file itself while its bytecode
// cache is not older); the agent accepts one only when compiling it gives
// exactly the live code (loader/PROTOCOL.md, prove_baseline).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "loader/agent_api.hpp"
#include "patch/live_patch.hpp"
#include "util/result.hpp"

namespace pyhot::patch {

// Distinct candidate texts, most likely first: the git index, HEAD, the
// last commits that touched the file, `FILE~`, and the file itself when no
// bytecode cache of it is older than it.
std::vector<std::string> baseline_candidates(const std::string& file);

// The file's text at a git revision (`--assume-imported REV`).
Result<std::string> text_at_revision(const std::string& file, const std::string& revision);

// Asks the agent to prove one of the candidates; the proven text (now the
// agent's snapshot of the module) or none.
// `note`: what the module's .pyc proved when no candidate is proven.
Result<std::optional<std::string>> recover_baseline(loader::Agent& agent, const ModuleLocation& where,
                                                    std::string* note = nullptr);

// Records `text` as what the module was imported from, without proof, when
// the agent knows nothing yet (an existing snapshot is kept). True when recorded.
Result<bool> assume_imported(loader::Agent& agent, const ModuleLocation& where, const std::string& text);

}  // namespace pyhot::patch
