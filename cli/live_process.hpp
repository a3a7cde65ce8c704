// What the commands that talk to a live process share: opening its agent
// (one line when that fails) and the words and JSON of its patch history.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loader/agent_api.hpp"
#include "loader/agent_client.hpp"
#include "util/result.hpp"

namespace pyhot::cli {

Result<std::unique_ptr<loader::AgentClient>> open_agent(int pid, bool force);

// Opens the agent; on failure prints one line (or fills the JSON document
// with "error" and "error_kind") and returns null.
loader::AgentClient* open_or_report(int pid, bool force, bool json_output, nlohmann::json& document,
                                    std::unique_ptr<loader::AgentClient>& holder);

// The parsed cache's directory when it falls back to /tmp (no
// PYHOT_CACHE_DIR, XDG_CACHE_HOME or HOME: patch/parsed_cache.cpp), made or
// verified as the user's own, mode 0700, not a link, before anything is read
// from it or written to it: another user could have made that name first.
// Elsewhere nothing to check. One line naming the path when refused.
Result<Done> verify_shared_cache_directory();

// An error's message as a sentence (a full stop at its end).
std::string error_text(const Error& error);

std::string format_time(double unix_seconds);

nlohmann::json to_json(const std::vector<loader::PatchChange>& changes);
nlohmann::json to_json(const std::vector<loader::PatchRecord>& patches);

}  // namespace pyhot::cli
