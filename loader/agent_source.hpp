// The Python that pyhot puts into targets, embedded at build time from
// loader/agent/, and the version number the build gives the project.
#pragma once

#include <string_view>

namespace pyhot::loader {

// loader/agent/pyhot_agent.py, its AGENT_VERSION set to agent_version().
std::string_view agent_source();

// loader/agent/sitecustomize.py: starts the agent in processes `pyhot run` starts.
std::string_view sitecustomize_source();

// The project version from CMake (`project(pyhot VERSION ...)`).
std::string_view pyhot_version();

// The embedded agent's version: pyhot_version(), '+', and 12 hex digits of
// the agent text's SHA-256 ("0.1.0+3f2a9c0d41be").
std::string_view agent_version();

}  // namespace pyhot::loader
